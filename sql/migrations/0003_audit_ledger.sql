-- The tamper-evident audit log (RFC 9162) over audit_events, one Merkle tree per tenant.
--
-- Writers only INSERT into audit_events, in their own transactions; a trigger queues each new event. The
-- sequencer (one leader per database, see AuditSequencer) takes queued events, gives them the tenant's next
-- `seq` values, stores their leaf hashes and every perfect subtree they complete, and signs a checkpoint.
-- Leaves, subtree hashes and checkpoints are append-only like the events themselves.

-- Work not yet sequenced. Not part of the log: the sequencer deletes what it has sequenced. Only the trigger
-- below fills it, from rows that just passed audit_events' own checks, so it repeats none of them: foreign keys
-- here would cost every write two more lookups (one of them on the tenant's hot row) for nothing.
CREATE TABLE audit_unsequenced (
    event_id    bigint PRIMARY KEY,
    tenant_id   uuid NOT NULL
);
CREATE INDEX audit_unsequenced_tenant ON audit_unsequenced (tenant_id, event_id);
ALTER TABLE audit_unsequenced ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_unsequenced FORCE ROW LEVEL SECURITY;
-- Operator scope lets the sequencer see which tenants have work; the work itself runs per tenant.
CREATE POLICY audit_unsequenced_isolation ON audit_unsequenced
    USING (tenant_id = app_current_tenant() OR app_operator_scope())
    WITH CHECK (tenant_id = app_current_tenant() OR app_operator_scope());

CREATE FUNCTION app_queue_audit_events() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO audit_unsequenced (event_id, tenant_id) SELECT id, tenant_id FROM added_events;
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_events_queue AFTER INSERT ON audit_events
    REFERENCING NEW TABLE AS added_events
    FOR EACH STATEMENT EXECUTE FUNCTION app_queue_audit_events();

-- Events written before this migration are queued like any other.
SELECT set_config('consentd.operator', 'on', true);
INSERT INTO audit_unsequenced (event_id, tenant_id) SELECT id, tenant_id FROM audit_events ORDER BY id;

-- seq → event: the log's order. `seq` starts at 0 per tenant and has no gaps (checked on insert).
CREATE TABLE audit_leaves (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    seq         bigint NOT NULL CHECK (seq >= 0),
    event_id    bigint NOT NULL UNIQUE REFERENCES audit_events (id),
    PRIMARY KEY (tenant_id, seq)
);

-- The hash of every perfect subtree: leaves [idx·2^level, (idx+1)·2^level). Level 0 holds the leaf hashes.
-- Any proof is O(log n) of these rows; a tree of n leaves stores fewer than 2n.
CREATE TABLE audit_nodes (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    level       smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    idx         bigint NOT NULL CHECK (idx >= 0),
    hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (tenant_id, level, idx)
);

-- Every checkpoint issued, as the signed note that was published.
CREATE TABLE audit_checkpoints (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    tree_size   bigint NOT NULL CHECK (tree_size >= 0),
    root_hash   bytea NOT NULL CHECK (octet_length(root_hash) = 32),
    origin      text NOT NULL,
    note        text NOT NULL,
    -- The Ed25519 key that signed, so a verifier can tell which key to ask the operator to confirm.
    public_key  bytea NOT NULL CHECK (octet_length(public_key) = 32),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tree_size)
);

-- No gaps: a leaf follows the tenant's previous one; a checkpoint covers only leaves that exist.
CREATE FUNCTION app_check_audit_leaf() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.seq > 0 AND NOT EXISTS (
        SELECT 1 FROM audit_leaves WHERE tenant_id = NEW.tenant_id AND seq = NEW.seq - 1) THEN
        RAISE EXCEPTION 'audit seq % would leave a gap', NEW.seq USING ERRCODE = 'CL002';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_leaves_contiguous BEFORE INSERT ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION app_check_audit_leaf();

CREATE FUNCTION app_check_audit_checkpoint() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.tree_size > 0 AND NOT EXISTS (
        SELECT 1 FROM audit_leaves WHERE tenant_id = NEW.tenant_id AND seq = NEW.tree_size - 1) THEN
        RAISE EXCEPTION 'a checkpoint of size % covers leaves that do not exist', NEW.tree_size USING ERRCODE = 'CL002';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_checkpoints_covered BEFORE INSERT ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION app_check_audit_checkpoint();

SELECT app_isolate_tenant_rows('audit_leaves');
SELECT app_isolate_tenant_rows('audit_nodes');
SELECT app_isolate_tenant_rows('audit_checkpoints');

CREATE TRIGGER audit_leaves_append_only BEFORE UPDATE OR DELETE ON audit_leaves
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_leaves_no_truncate BEFORE TRUNCATE ON audit_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_nodes_append_only BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_nodes_no_truncate BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION app_reject_change();
