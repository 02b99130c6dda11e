-- Tenants, their API keys, and the row-level security that keeps each request inside its own tenant.
--
-- Every request's transaction names its tenant with set_config('consentd.tenant_id', …, true) (SET LOCAL).
-- A transaction that names none sees no tenant-owned row at all: the policies compare against NULL.
-- RLS here guards against a query that forgets its tenant filter; it is not a barrier against the runtime role
-- itself, which may name any tenant (docs/security.md).

CREATE FUNCTION app_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('consentd.tenant_id', true), '')::uuid $$;

-- Operator commands (tenants list, keys list across tenants) declare themselves explicitly.
CREATE FUNCTION app_operator_scope() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('consentd.operator', true), '') = 'on' $$;

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_isolation ON tenants
    USING (id = app_current_tenant() OR app_operator_scope())
    WITH CHECK (id = app_current_tenant() OR app_operator_scope());

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    -- SHA-256 of the whole token; the token itself is shown once and never stored.
    key_hash     bytea NOT NULL UNIQUE CHECK (octet_length(key_hash) = 32),
    display_prefix text NOT NULL CHECK (length(display_prefix) <= 16),
    label        text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    scopes       text[] NOT NULL CHECK (
                     cardinality(scopes) > 0
                     AND scopes <@ ARRAY['consent:write', 'consent:check', 'dpo', 'admin']::text[]),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
-- A key row is also visible to whoever presents its hash: that is how a request finds its tenant.
CREATE POLICY api_keys_isolation ON api_keys
    USING (
        tenant_id = app_current_tenant()
        OR app_operator_scope()
        OR key_hash = decode(nullif(current_setting('consentd.key_hash', true), ''), 'hex'))
    WITH CHECK (tenant_id = app_current_tenant() OR app_operator_scope());

-- Resolves a presented key in one round trip. SECURITY INVOKER: it runs with the caller's rights and policies.
CREATE FUNCTION app_authenticate(p_key_hash bytea)
RETURNS TABLE (key_id uuid, tenant_id uuid, scopes text[])
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('consentd.key_hash', encode(p_key_hash, 'hex'), true);
    PERFORM set_config('consentd.tenant_id', '', true);
    RETURN QUERY
        SELECT k.id, k.tenant_id, k.scopes
        FROM api_keys k
        WHERE k.key_hash = p_key_hash AND k.revoked_at IS NULL;
    PERFORM set_config('consentd.key_hash', '', true);
END
$$;
