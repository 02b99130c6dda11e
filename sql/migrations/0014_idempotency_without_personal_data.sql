-- Idempotency records that say nothing about a person (issue 21, finding 5). The request hash was an unkeyed
-- SHA-256 of a body whose only unknown is often the phone number, so a record could be matched against guessed
-- numbers; it is now an HMAC under a key of the tenant's, over the request with the people it names replaced by
-- their blind indexes (`IdempotencyClaim.requestHash`). Each record names those blind indexes in `subject_refs`
-- and an erasure deletes the records that name the person. A response that carried a bearer token (a consent
-- session's) is no longer kept: a retry of it is 409 `idempotent_replay_withheld`.
--
-- The records written before this migration have the unkeyed hash, are tied to nobody and may hold a live session
-- token, so they are deleted: a request first sent before the upgrade and retried after it with the same key runs
-- again (docs/operations.md, "Upgrading").
DELETE FROM idempotency_keys;

ALTER TABLE idempotency_keys ADD COLUMN subject_refs bytea[] NOT NULL DEFAULT '{}';
ALTER TABLE idempotency_keys ADD COLUMN replay_withheld boolean NOT NULL DEFAULT false;
CREATE INDEX idempotency_keys_subjects ON idempotency_keys USING gin (subject_refs);

ALTER TABLE tenant_keys DROP CONSTRAINT tenant_keys_purpose_check;
ALTER TABLE tenant_keys ADD CONSTRAINT tenant_keys_purpose_check
    CHECK (purpose IN ('blind_index', 'suppression', 'self_service_link', 'settings', 'idempotency'));
