-- The rows that hang off a subject, a consent or a collection no longer each prove their tenant exists
-- (issues 18 and 22). Each names a parent (its subject, consent or collection) whose foreign key already ties it
-- to a tenant that exists; a change-log row names only a blind index, read by the tenant that wrote it. And
-- row-level security lets a transaction write only rows of the tenant it named (WITH CHECK tenant_id =
-- app_current_tenant()), which is the tenant of the key it was called with. What the dropped keys added was one probe of
-- `tenants` per row written, with its FOR KEY SHARE lock on the tenant's row: five per opt-in of a new person, and
-- five million for an import of a million, about a sixth of the database's time for each (docs/benchmarks.md,
-- "Imports"). Tenants are never deleted (the runtime role cannot), so no row can be left pointing at none.
ALTER TABLE subject_keys DROP CONSTRAINT subject_keys_tenant_id_fkey;
ALTER TABLE collections DROP CONSTRAINT collections_tenant_id_fkey;
ALTER TABLE consents DROP CONSTRAINT consents_tenant_id_fkey;
ALTER TABLE consent_evidence DROP CONSTRAINT consent_evidence_tenant_id_fkey;
ALTER TABLE consent_change_log DROP CONSTRAINT consent_change_log_tenant_id_fkey;
