-- The consent lifecycle: the purpose catalogue, notices, subjects stored per the data-protection model, consents
-- with their evidence, inbound interactions (the 24-hour window), idempotent replays, and the audit events every
-- state change appends in its own transaction.
--
-- Nothing personal is stored in plaintext: a subject is found by a blind index (HMAC-SHA256 under a per-tenant key)
-- and its identifier, provenance and message texts are AES-GCM ciphertext under a per-subject data key, which the
-- master key wraps. Erasure deletes the data key and the blind index (docs/architecture.md).

-- Rejects changes to rows that are evidence. The runtime role lacks the privileges too; this also stops the owner.
CREATE FUNCTION app_reject_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: its rows are immutable evidence', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Row-level security for a table whose rows belong to one tenant: enabled, FORCEd (the owner too) and limited
-- to the tenant the transaction names. Every tenant-owned table of later migrations goes through this as well.
CREATE FUNCTION app_isolate_tenant_rows(p_table regclass) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', p_table);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', p_table);
    EXECUTE format(
        'CREATE POLICY %I ON %s USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())',
        p_table::text || '_isolation', p_table);
END
$$;
REVOKE EXECUTE ON FUNCTION app_isolate_tenant_rows(regclass) FROM PUBLIC;

-- Built-in purposes have no tenant and are visible to every tenant; a tenant's own purposes only to it.
CREATE TABLE purposes (
    tenant_id   uuid REFERENCES tenants (id),
    key         text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category    text NOT NULL CHECK (category IN ('utility', 'marketing', 'authentication')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- Built-ins list in the contract's order; a tenant's own follow in the order they were made.
    position    integer NOT NULL DEFAULT 1000,
    UNIQUE NULLS NOT DISTINCT (tenant_id, key)
);
INSERT INTO purposes (tenant_id, key, name, category, position) VALUES
    (NULL, 'account_update', 'Account updates', 'utility', 1),
    (NULL, 'payment_update', 'Payment updates', 'utility', 2),
    (NULL, 'shipping_update', 'Shipping updates', 'utility', 3),
    (NULL, 'personal_finance_update', 'Personal finance updates', 'utility', 4),
    (NULL, 'reservation_update', 'Reservation updates', 'utility', 5),
    (NULL, 'appointment_update', 'Appointment updates', 'utility', 6),
    (NULL, 'transportation_update', 'Transportation updates', 'utility', 7),
    (NULL, 'ticket_update', 'Ticket updates', 'utility', 8),
    (NULL, 'alert_update', 'Alert updates', 'utility', 9),
    (NULL, 'issue_resolution', 'Issue resolution', 'utility', 10),
    (NULL, 'marketing', 'Marketing', 'marketing', 11),
    (NULL, 'authentication', 'One-time passwords', 'authentication', 12);

-- Seeded before row security is switched on: built-ins belong to no tenant, so no policy admits writing them.
ALTER TABLE purposes ENABLE ROW LEVEL SECURITY;
ALTER TABLE purposes FORCE ROW LEVEL SECURITY;
CREATE POLICY purposes_isolation ON purposes
    USING (tenant_id IS NULL OR tenant_id = app_current_tenant())
    WITH CHECK (tenant_id = app_current_tenant());

-- Per-tenant secrets (the blind-index key), wrapped by the master key. Made on first use by the server.
CREATE TABLE tenant_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    purpose     text NOT NULL CHECK (purpose IN ('blind_index', 'suppression')),
    wrapped_key bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose)
);
SELECT app_isolate_tenant_rows('tenant_keys');

-- Notices: the exact wording a person was shown. Immutable; new wording is a new notice with the next version.
CREATE TABLE notices (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    channel     text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    language    text NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    text        text NOT NULL,
    text_sha256 bytea NOT NULL CHECK (octet_length(text_sha256) = 32),
    purposes    text[] NOT NULL CHECK (cardinality(purposes) > 0),
    created_by  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, channel, language, version)
);
CREATE INDEX notices_tenant ON notices (tenant_id, created_at);
SELECT app_isolate_tenant_rows('notices');
CREATE TRIGGER notices_immutable BEFORE UPDATE OR DELETE ON notices
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER notices_no_truncate BEFORE TRUNCATE ON notices
    FOR EACH STATEMENT EXECUTE FUNCTION app_reject_change();

-- One row per (tenant, channel, person). blind_index and the data key are what erasure destroys.
CREATE TABLE subjects (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    channel               text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    blind_index           bytea CHECK (octet_length(blind_index) = 32),
    identifier_ciphertext bytea,
    last_inbound_at       timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    erased_at             timestamptz,
    UNIQUE (tenant_id, channel, blind_index)
);
SELECT app_isolate_tenant_rows('subjects');

-- Kept apart from subjects so that erasure is one DELETE and no copy of the key lingers in an updated row.
CREATE TABLE subject_keys (
    subject_id  uuid PRIMARY KEY REFERENCES subjects (id),
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    wrapped_key bytea NOT NULL
);
SELECT app_isolate_tenant_rows('subject_keys');

-- One opt-in as it was collected: the notice, the method, both clocks, the key, and the encrypted provenance.
CREATE TABLE collections (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    subject_id             uuid NOT NULL REFERENCES subjects (id),
    notice_id              uuid NOT NULL REFERENCES notices (id),
    method                 text NOT NULL CHECK (method IN ('checkbox', 'double_opt_in', 'verbal', 'import', 'api')),
    collected_at           timestamptz NOT NULL,
    received_at            timestamptz NOT NULL,
    recorded_by            uuid NOT NULL,
    provenance_ciphertext  bytea
);
CREATE INDEX collections_subject ON collections (subject_id, received_at);
SELECT app_isolate_tenant_rows('collections');

-- A consent to one purpose on one channel. At most one is active (granted or pending) per subject and purpose;
-- a withdrawn one keeps its history and a later opt-in is a new row.
CREATE TABLE consents (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    subject_id     uuid NOT NULL REFERENCES subjects (id),
    channel        text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    purpose        text NOT NULL,
    notice_id      uuid NOT NULL REFERENCES notices (id),
    status         text NOT NULL CHECK (status IN ('granted', 'pending', 'withdrawn')),
    created_at     timestamptz NOT NULL,
    granted_at     timestamptz,
    revoked_at     timestamptz,
    revoke_source  text CHECK (revoke_source IN ('api', 'stop_keyword', 'self_service', 'dpo')),
    revoked_by     uuid,
    CHECK ((status = 'withdrawn') = (revoked_at IS NOT NULL)),
    CHECK (status <> 'granted' OR granted_at IS NOT NULL)
);
CREATE UNIQUE INDEX consents_one_active ON consents (subject_id, purpose) WHERE status IN ('granted', 'pending');
CREATE INDEX consents_subject ON consents (subject_id, purpose, created_at DESC);
SELECT app_isolate_tenant_rows('consents');

-- Every collection that supports a consent: the first opt-in and each later re-confirmation.
CREATE TABLE consent_evidence (
    consent_id     uuid NOT NULL REFERENCES consents (id),
    collection_id  uuid NOT NULL REFERENCES collections (id),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    PRIMARY KEY (consent_id, collection_id)
);
SELECT app_isolate_tenant_rows('consent_evidence');

CREATE TABLE interactions (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    subject_id       uuid NOT NULL REFERENCES subjects (id),
    direction        text NOT NULL CHECK (direction = 'inbound'),
    kind             text NOT NULL CHECK (kind IN ('message', 'stop_keyword')),
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    recorded_by      uuid NOT NULL,
    text_ciphertext  bytea
);
CREATE INDEX interactions_subject ON interactions (subject_id, occurred_at);
SELECT app_isolate_tenant_rows('interactions');

-- A write's first response, replayed for a retry with the same Idempotency-Key and body. Responses hold ids and
-- times, never personal data.
CREATE TABLE idempotency_keys (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    operation     text NOT NULL,
    request_hash  bytea NOT NULL CHECK (octet_length(request_hash) = 32),
    status        integer,
    response      bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
SELECT app_isolate_tenant_rows('idempotency_keys');

-- Positions of consent-state changes, returned as consistency tokens (docs/architecture.md).
CREATE SEQUENCE consent_changes AS bigint;

-- Audit events as written by the transaction that made the change. The tamper-evident log (sequence numbers,
-- leaf and tree hashes, signed checkpoints) is built over these rows by the sequencer without changing them.
CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    at          timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
    action      text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    actor       text NOT NULL,
    subject_ref uuid,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object')
);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_isolation ON audit_events
    USING (tenant_id = app_current_tenant() OR app_operator_scope())
    WITH CHECK (tenant_id = app_current_tenant() OR app_operator_scope());
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION app_reject_change();

-- The check path in one round trip: names the tenant for row-level security, refuses an unknown purpose, and
-- returns for each blind index found its subject, window and the consent that decides (the active one, else the
-- latest withdrawn). Blind indexes not returned belong to nobody the tenant knows.
CREATE FUNCTION app_consent_states(p_tenant uuid, p_channel text, p_purpose text, p_blind_indexes bytea[])
RETURNS TABLE (blind_index bytea, subject_id uuid, last_inbound_at timestamptz,
               consent_id uuid, status text, granted_at timestamptz, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF NOT EXISTS (SELECT 1 FROM purposes p WHERE p.key = p_purpose) THEN
        RAISE EXCEPTION 'unknown purpose' USING ERRCODE = 'CL001';
    END IF;
    RETURN QUERY
        SELECT s.blind_index, s.id, s.last_inbound_at, c.id, c.status, c.granted_at, c.revoked_at
        FROM subjects s
        LEFT JOIN LATERAL (
            SELECT c.id, c.status, c.granted_at, c.revoked_at
            FROM consents c
            WHERE c.subject_id = s.id AND c.purpose = p_purpose
            ORDER BY (c.status <> 'withdrawn') DESC, c.created_at DESC
            LIMIT 1
        ) c ON true
        WHERE s.channel = p_channel AND s.blind_index = ANY (p_blind_indexes) AND s.erased_at IS NULL;
END
$$;
