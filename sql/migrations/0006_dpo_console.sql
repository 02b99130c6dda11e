-- The DPO's console: signed-in sessions (a dpo key exchanged for a cookie) and the record of audit-log
-- verifications, whose latest success the console's overview shows.

-- The cookie holds a TenantToken; only its SHA-256 is stored. A session ends on sign-out, after its idle time, or
-- when its key is revoked (checked on every request by joining api_keys).
CREATE TABLE console_sessions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    token_sha256  bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    key_id        uuid NOT NULL REFERENCES api_keys (id),
    -- Sent back in every form; a cross-site page cannot read it.
    csrf_token    text NOT NULL CHECK (length(csrf_token) BETWEEN 32 AND 64),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz
);
CREATE INDEX console_sessions_age ON console_sessions (tenant_id, last_seen_at);
SELECT app_isolate_tenant_rows('console_sessions');

CREATE TABLE audit_verifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    verified_at     timestamptz NOT NULL DEFAULT now(),
    ok              boolean NOT NULL,
    tree_size       bigint NOT NULL CHECK (tree_size >= 0),
    problem         text CHECK (length(problem) <= 2000),
    verified_by     uuid
);
CREATE INDEX audit_verifications_latest ON audit_verifications (tenant_id, ok, verified_at DESC);
SELECT app_isolate_tenant_rows('audit_verifications');
