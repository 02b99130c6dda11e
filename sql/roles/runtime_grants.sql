-- What the runtime role may do, re-applied in full by every `consentd migrate` run.
-- {{app_role}} is replaced by the quoted role name. Everything is revoked first, so this file is the whole truth:
-- a privilege not granted here is one the server does not have.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {{app_role}};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {{app_role}};
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {{app_role}};
REVOKE CREATE ON SCHEMA public FROM {{app_role}};
GRANT USAGE ON SCHEMA public TO {{app_role}};

GRANT SELECT ON schema_migrations TO {{app_role}};
GRANT SELECT ON tenants TO {{app_role}};
GRANT SELECT, INSERT ON api_keys TO {{app_role}};
GRANT UPDATE (revoked_at) ON api_keys TO {{app_role}};

GRANT EXECUTE ON FUNCTION app_current_tenant() TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_operator_scope() TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_authenticate(bytea) TO {{app_role}};

-- The consent lifecycle (0002). Evidence tables take INSERT and SELECT only; state changes name their columns.
GRANT SELECT, INSERT ON purposes TO {{app_role}};
GRANT UPDATE (name, category, updated_at) ON purposes TO {{app_role}};
GRANT SELECT, INSERT ON tenant_keys TO {{app_role}};
GRANT SELECT, INSERT ON notices TO {{app_role}};
GRANT SELECT, INSERT ON subjects TO {{app_role}};
GRANT UPDATE (last_inbound_at, entry_point_at, marketing_stopped_at) ON subjects TO {{app_role}};
GRANT SELECT, INSERT ON subject_keys TO {{app_role}};
GRANT SELECT, INSERT ON collections TO {{app_role}};
GRANT SELECT, INSERT ON consents TO {{app_role}};
GRANT UPDATE (status, granted_at, revoked_at, revoke_source, revoked_by) ON consents TO {{app_role}};
GRANT SELECT, INSERT ON consent_evidence TO {{app_role}};
GRANT SELECT, INSERT ON interactions TO {{app_role}};
GRANT SELECT, INSERT ON idempotency_keys TO {{app_role}};
GRANT UPDATE (status, response, replay_withheld, subject_refs) ON idempotency_keys TO {{app_role}};
GRANT USAGE ON SEQUENCE consent_changes TO {{app_role}};
GRANT SELECT, INSERT ON audit_events TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_consent_states(uuid, text, text, bytea[]) TO {{app_role}};

-- The audit ledger (0003). The log tables take INSERT and SELECT only; the queue is the sequencer's to empty.
GRANT SELECT, INSERT, DELETE ON audit_unsequenced TO {{app_role}};
GRANT SELECT, INSERT ON audit_leaves TO {{app_role}};
GRANT SELECT, INSERT ON audit_nodes TO {{app_role}};
GRANT SELECT, INSERT ON audit_checkpoints TO {{app_role}};

-- Data-subject rights (0004). Erasure empties a subject's row, deletes its data key and its interactions, and
-- clears the provenance of its collections; retention deletes old interactions and idempotency records and clears
-- old provenance; rotation re-wraps keys. Nothing here can touch the audit log.
GRANT UPDATE (blind_index, identifier_ciphertext, last_inbound_at, entry_point_at, marketing_stopped_at, erased_at) ON subjects TO {{app_role}};
GRANT DELETE ON subject_keys TO {{app_role}};
GRANT UPDATE (wrapped_key, master_key_id) ON subject_keys TO {{app_role}};
GRANT UPDATE (wrapped_key, master_key_id) ON tenant_keys TO {{app_role}};
GRANT UPDATE (provenance_ciphertext) ON collections TO {{app_role}};
GRANT DELETE ON interactions TO {{app_role}};
GRANT DELETE ON idempotency_keys TO {{app_role}};
GRANT SELECT, INSERT ON subject_requests TO {{app_role}};
GRANT UPDATE (status, closed_at, closed_by) ON subject_requests TO {{app_role}};
GRANT SELECT, INSERT ON suppressions TO {{app_role}};

-- Collecting consent where people are (0005). Sessions change only by their decision; settings by admins.
GRANT UPDATE (status, expired_at) ON consents TO {{app_role}};
GRANT SELECT, INSERT ON tenant_settings TO {{app_role}};
GRANT UPDATE (allowed_origins, whatsapp_app_secret_ciphertext, whatsapp_verify_token_sha256, updated_at)
    ON tenant_settings TO {{app_role}};
GRANT SELECT, INSERT ON consent_sessions TO {{app_role}};
GRANT UPDATE (decided_at, decision, collection_id) ON consent_sessions TO {{app_role}};
GRANT DELETE ON consent_sessions TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON whatsapp_messages_seen TO {{app_role}};

-- The DPO console (0006).
GRANT SELECT, INSERT, DELETE ON console_sessions TO {{app_role}};
GRANT UPDATE (last_seen_at, ended_at) ON console_sessions TO {{app_role}};
GRANT SELECT, INSERT ON audit_verifications TO {{app_role}};

-- One-statement writes (0007): each names its tenant itself; they do nothing the grants above do not allow.
GRANT EXECUTE ON FUNCTION app_withdraw_consents(uuid, uuid, text, text[], text, text, uuid) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_unknown_purposes(text[]) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_change_position(text, text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_revoke(uuid, text, bytea, text[], text, text, uuid, bytea, text, text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_subject_key(uuid, text, bytea) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_record_opt_in(uuid, text, bytea, uuid, bytea, bytea, bytea, bytea, uuid, text[], uuid[],
    text, text, timestamptz, uuid, uuid, bytea, text, double precision, text, text) TO {{app_role}};

-- The change log (0009): written by the write functions, read by every instance's listener, pruned by retention.
GRANT SELECT, INSERT, DELETE ON consent_change_log TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_changes_since(bigint) TO {{app_role}};
-- Platform rules (0010): a tenant's catalogue changed.
GRANT EXECUTE ON FUNCTION app_catalogue_change(uuid) TO {{app_role}};
-- Message templates (0011): the wording is written once; status, category and quality change.
GRANT SELECT, INSERT ON message_templates TO {{app_role}};
GRANT UPDATE (status, status_reason, category, quality, platform_status_at, platform_category_at, updated_at)
    ON message_templates TO {{app_role}};
-- Stops and objections (0012): stops are evidence (INSERT and SELECT); an objection widens a suppression entry;
-- opt-out reviews are resolved once and deleted with the person.
GRANT SELECT, INSERT ON consent_stops TO {{app_role}};
GRANT UPDATE (scope, stopped_at) ON suppressions TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON opt_out_reviews TO {{app_role}};
GRANT UPDATE (resolution, resolved_at, resolved_by) ON opt_out_reviews TO {{app_role}};
GRANT UPDATE (whatsapp_phone_number_ids, whatsapp_stop_payloads, updated_at) ON tenant_settings TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_purpose_category(text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_stop(uuid, uuid, text, text[], text, timestamptz, text, text, uuid) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_object(uuid, text, bytea, bytea, text, timestamptz, text, text, uuid, uuid, text)
    TO {{app_role}};
-- Opt-ins of new people in groups (0015).
GRANT EXECUTE ON FUNCTION app_new_opt_in_verdicts(uuid, int[], bytea[], text[], timestamptz[], int[], text[], uuid[])
    TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_new_opt_in_rows(int[], text[], uuid[], text[], text[], uuid[], text[], uuid[], text[],
    text[], uuid[], text[]) TO {{app_role}};
-- Withdrawals in groups (0016).
GRANT EXECUTE ON FUNCTION app_record_withdrawals(uuid, text[], bytea[], boolean[], text[], text[], uuid[], bytea[],
    int[], text[]) TO {{app_role}};

-- Imports (0017). Chunks are deleted once recorded; the import's counts, status, key and lease change as it runs;
-- erasure clears a row's subject and key. Opt-ins of new people in groups now take 0017's signature.
GRANT EXECUTE ON FUNCTION app_record_new_opt_ins(uuid, text[], bytea[], uuid[], bytea[], bytea[], bytea[], bytea[],
    uuid[], text[], text[], timestamptz[], uuid[], uuid[], bytea[], text[], int[], text[], uuid[], boolean)
    TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON imports TO {{app_role}};
GRANT UPDATE (status, file_sha256, file_bytes, same_file_as, rows_read, rows_recorded, granted, pending, superseded,
    suppressed, duplicate, invalid, wrapped_key, master_key_id, lease_holder, lease_until, received_at, completed_at)
    ON imports TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON import_chunks TO {{app_role}};
-- Only so that a worker can lock the chunk it records (FOR UPDATE needs UPDATE on a column); no chunk is updated.
GRANT UPDATE (seq) ON import_chunks TO {{app_role}};
GRANT SELECT, INSERT ON import_rows TO {{app_role}};
GRANT UPDATE (subject_id, row_key) ON import_rows TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_record_import_batch(uuid, uuid, int, uuid, text, int[], text[], text[], bytea[], text[],
    bytea[], bytea) TO {{app_role}};

-- Change webhooks (0019). Endpoints are deleted outright (their deliveries with them); events and deliveries are
-- deleted by retention once delivered; attempts are never changed.
GRANT SELECT, INSERT, DELETE ON webhook_endpoints TO {{app_role}};
GRANT UPDATE (status, disabled_at, disabled_reason, secret_sealed, secret_version, previous_secret_sealed,
    previous_secret_until) ON webhook_endpoints TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON webhook_events TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON webhook_deliveries TO {{app_role}};
GRANT UPDATE (state, attempts, next_attempt_at, first_attempt_at, completed_at, redelivery_of)
    ON webhook_deliveries TO {{app_role}};
GRANT SELECT, INSERT, DELETE ON webhook_attempts TO {{app_role}};
GRANT UPDATE (due_soon_announced_at) ON subject_requests TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_webhook_type(text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_claim_webhook_deliveries(int, int) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_record_webhook_attempts(bigint[], int[], timestamptz[], int[], int[], text[], text[],
    timestamptz[], text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_announce_requests_due_soon(int, text) TO {{app_role}};
GRANT EXECUTE ON FUNCTION app_prune_webhook_deliveries(int) TO {{app_role}};
