-- Data-subject rights: requests with their due dates, the suppression list, and the master key that wraps each
-- stored key (for rotation). Erasure, retention and rotation change rows of earlier tables; the runtime grants
-- name exactly the columns they may touch.

-- Access, portability and erasure requests (GDPR Art. 15, 20, 17; OpenDSR's types). A request names the subject
-- by reference only: once the person is erased, the request stays as the record that the duty was met.
CREATE TABLE subject_requests (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    subject_id   uuid NOT NULL REFERENCES subjects (id),
    type         text NOT NULL CHECK (type IN ('access', 'portability', 'erasure')),
    status       text NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
    received_at  timestamptz NOT NULL,
    due_at       timestamptz NOT NULL CHECK (due_at > received_at),
    recorded_by  uuid NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    closed_by    uuid,
    CHECK ((status = 'pending') = (closed_at IS NULL)),
    CHECK ((closed_at IS NULL) = (closed_by IS NULL))
);
CREATE INDEX subject_requests_open ON subject_requests (tenant_id, status, due_at);
CREATE INDEX subject_requests_subject ON subject_requests (subject_id);
SELECT app_isolate_tenant_rows('subject_requests');

-- People who withdrew or objected and were then erased: a keyed hash of the identifier (the tenant's
-- 'suppression' key in tenant_keys, not the blind-index key) and nothing else, so that an old list cannot
-- re-import them (docs/data-subject-rights.md).
CREATE TABLE suppressions (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    keyed_hash   bytea NOT NULL CHECK (octet_length(keyed_hash) = 32),
    reason       text NOT NULL CHECK (reason IN ('withdrawn', 'objected')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, keyed_hash)
);
SELECT app_isolate_tenant_rows('suppressions');

-- Which master key wrapped each key: the first 8 bytes of a domain-separated SHA-256 of it (MasterKeyID). NULL on
-- keys wrapped before this migration; servers then try each configured master, and rotation re-wraps them.
ALTER TABLE subject_keys ADD COLUMN master_key_id bytea CHECK (octet_length(master_key_id) = 8);
ALTER TABLE tenant_keys ADD COLUMN master_key_id bytea CHECK (octet_length(master_key_id) = 8);
CREATE INDEX subject_keys_master ON subject_keys (tenant_id, master_key_id, subject_id);

-- Retention purges interactions by age.
CREATE INDEX interactions_age ON interactions (tenant_id, occurred_at);
CREATE INDEX consent_evidence_collection ON consent_evidence (collection_id);
-- An export gathers one person's audit events.
CREATE INDEX audit_events_subject ON audit_events (tenant_id, subject_ref) WHERE subject_ref IS NOT NULL;
