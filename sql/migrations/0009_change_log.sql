-- Consent-state changes reach other instances' check caches through a log written in the change's own
-- transaction, no longer through a NOTIFY queued in it (issue 18). PostgreSQL takes one cluster-wide lock from a
-- notifying transaction's pre-commit until its commit record is flushed, so every write waited for every other
-- write's WAL flush: measured, 197 of 230 sampled busy backends waited on it during an opt-in run
-- (docs/benchmarks.md). A row in this log commits with the change, in parallel with other writes; the instance
-- that wrote it sends one payload-free NOTIFY after the commit to wake the listeners, and listeners also read the
-- log every second, so a wake-up lost to a crash delays other instances by that second and loses nothing.
--
-- Positions come from the consent_changes sequence, taken before commit, so they commit out of order: a reader
-- cannot resume from the highest position it saw. It resumes from the oldest transaction that was still running
-- when it last read (written_by >= that snapshot's xmin), which covers every row it could not yet see.
CREATE TABLE consent_change_log (
    position    bigint NOT NULL,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    channel     text NOT NULL,
    -- The subject's keyed hash, as in subjects.blind_index: never the identifier.
    blind_index bytea NOT NULL CHECK (octet_length(blind_index) = 32),
    written_by  xid8 NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_change_log_written_by ON consent_change_log (written_by);

-- Writers add rows for their own tenant; listeners read and the retention job prunes in operator scope.
ALTER TABLE consent_change_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE consent_change_log FORCE ROW LEVEL SECURITY;
CREATE POLICY consent_change_log_isolation ON consent_change_log
    USING (tenant_id = app_current_tenant() OR app_operator_scope())
    WITH CHECK (tenant_id = app_current_tenant());

-- Same signature as 0007's, so that the write functions calling it stay as they are: p_change_prefix is
-- `<tenant> <channel> <hex blind index> ` (ConsentChange.payloadPrefix); p_notify_channel is no longer used.
-- A malformed prefix fails the cast, and with it the write.
CREATE OR REPLACE FUNCTION app_change_position(p_notify_channel text, p_change_prefix text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_position bigint := nextval('consent_changes');
BEGIN
    INSERT INTO consent_change_log (position, tenant_id, channel, blind_index)
    VALUES (v_position, split_part(p_change_prefix, ' ', 1)::uuid, split_part(p_change_prefix, ' ', 2),
            decode(split_part(p_change_prefix, ' ', 3), 'hex'));
    RETURN v_position;
END
$$;

-- The changes a listener has not seen yet: every row written by a transaction at or after p_horizon (NULL: none,
-- for the first read), and the horizon to pass next time, the xmin of the snapshot this read used. Transaction
-- ids are returned as bigint. Always one row at least; a row without a position carries only the horizon. Runs in
-- operator scope to read every tenant's rows; SET LOCAL ends with the caller's statement.
CREATE FUNCTION app_changes_since(p_horizon bigint)
RETURNS TABLE (horizon bigint, change_position bigint, tenant_id uuid, channel text, blind_index bytea,
               written_by bigint)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    RETURN QUERY
        WITH snapshot AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
        SELECT s.xmin, l.position, l.tenant_id, l.channel, l.blind_index, l.written_by::text::bigint
        FROM snapshot s
        LEFT JOIN consent_change_log l ON p_horizon IS NOT NULL AND l.written_by >= p_horizon::text::xid8;
END
$$;
