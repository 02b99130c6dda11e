-- Bulk import of legacy opt-ins (issue 22).
--
-- An import is received first and recorded after. The upload is read row by row: a file that cannot be read (an
-- unknown column, a quote left open) is refused with its line and leaves nothing behind; the rows are checked as
-- they arrive, and kept sealed, a chunk at a time, in import_chunks under a key of the import's own (wrapped by
-- the master key, like a subject's). Once the whole file is in, the import is 'running', and a worker records it
-- chunk by chunk: each chunk is one transaction that records its rows' opt-ins by the rules of a single opt-in,
-- writes a row of import_rows per line, appends one audit event for the chunk (import.batch_recorded, whose data
-- holds the Merkle root of the chunk's rows), counts the outcomes and deletes the chunk. A worker that dies leaves
-- the chunk it was on in place; another takes the import over when the lease runs out. A dry run checks every row
-- and keeps only its rejections: nothing is spooled, nothing recorded.
CREATE TABLE imports (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    channel         text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    notice_id       uuid NOT NULL REFERENCES notices (id),
    format          text NOT NULL CHECK (format IN ('csv', 'ndjson')),
    dry_run         boolean NOT NULL,
    -- receiving: the upload is being read; running: received, being recorded; completed: every chunk recorded;
    -- validated: a dry run, checked.
    status          text NOT NULL CHECK (status IN ('receiving', 'running', 'completed', 'validated')),
    file_sha256     bytea CHECK (octet_length(file_sha256) = 32),
    file_bytes      bigint NOT NULL DEFAULT 0,
    -- An earlier import of the same tenant with the same SHA-256: this one then records only duplicates.
    same_file_as    uuid REFERENCES imports (id),
    rows_read       int NOT NULL DEFAULT 0,
    rows_recorded   int NOT NULL DEFAULT 0,
    granted         int NOT NULL DEFAULT 0,
    pending         int NOT NULL DEFAULT 0,
    superseded      int NOT NULL DEFAULT 0,
    suppressed      int NOT NULL DEFAULT 0,
    duplicate       int NOT NULL DEFAULT 0,
    invalid         int NOT NULL DEFAULT 0,
    recorded_by     uuid NOT NULL,
    actor           text NOT NULL,
    -- The key the chunks are sealed under; dropped with the last chunk.
    wrapped_key     bytea,
    master_key_id   bytea,
    -- Which instance is reading or recording the import, and until when; an expired lease may be taken over.
    lease_holder    uuid,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    received_at     timestamptz,
    completed_at    timestamptz
);
CREATE INDEX imports_unfinished ON imports (created_at) WHERE status IN ('receiving', 'running');
CREATE INDEX imports_by_file ON imports (tenant_id, file_sha256) WHERE NOT dry_run;
-- Each instance's worker looks for imports to record across tenants (operator scope), and records each in its
-- tenant's transactions, as the audit sequencer does with its queue.
ALTER TABLE imports ENABLE ROW LEVEL SECURITY;
ALTER TABLE imports FORCE ROW LEVEL SECURITY;
CREATE POLICY imports_isolation ON imports
    USING (tenant_id = app_current_tenant() OR app_operator_scope())
    WITH CHECK (tenant_id = app_current_tenant());

CREATE TABLE import_chunks (
    import_id   uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    seq         int NOT NULL,
    first_line  int NOT NULL,
    last_line   int NOT NULL,
    -- The chunk's rows and rejections (ImportChunk), sealed under the import's key.
    sealed      bytea NOT NULL,
    PRIMARY KEY (import_id, seq)
);
SELECT app_isolate_tenant_rows('import_chunks');

-- What became of each line. subject_id and row_key are cleared when the person is erased; the leaf hash stays,
-- so the other rows of the batch keep their proofs, and it cannot be recomputed without them.
CREATE TABLE import_rows (
    import_id   uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    -- The import's tenant (row-level security checks it is the transaction's); no key of its own to tenants,
    -- whose probe a million rows would pay for nothing the import's key does not already prove.
    tenant_id   uuid NOT NULL,
    line        int NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('granted', 'pending', 'superseded', 'suppressed', 'duplicate',
                                                 'invalid')),
    reason      text,
    -- The chunk whose import.batch_recorded event commits to the row; NULL for a dry run's rejections.
    batch       int,
    leaf_hash   bytea CHECK (octet_length(leaf_hash) = 32),
    subject_id  uuid,
    row_key     bytea CHECK (octet_length(row_key) = 32),
    PRIMARY KEY (import_id, line)
);
-- A row recorded once is found again by its key; the duplicates that point at it are not indexed.
CREATE INDEX import_rows_key ON import_rows (tenant_id, row_key) WHERE row_key IS NOT NULL AND outcome <> 'duplicate';
CREATE INDEX import_rows_subject ON import_rows (subject_id) WHERE subject_id IS NOT NULL;
SELECT app_isolate_tenant_rows('import_rows');

-- A chunk's rows, its audit event and its counts (an empty reason, subject or row key is none), and the chunk deleted, in one statement of the chunk's
-- transaction; refused (CL020) when the caller no longer holds the import's lease, so that a worker that stalled
-- past its lease cannot record a chunk that the worker who took over records too.
CREATE FUNCTION app_record_import_batch(
    p_tenant uuid, p_import uuid, p_batch int, p_holder uuid, p_actor text, p_lines int[], p_outcomes text[],
    p_reasons text[], p_leaf_hashes bytea[], p_subject_ids text[], p_row_keys bytea[], p_root bytea
) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_counts jsonb;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    PERFORM 1 FROM imports WHERE id = p_import AND status = 'running' AND lease_holder = p_holder FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CL020', MESSAGE = 'the import is not running under this lease';
    END IF;
    INSERT INTO import_rows (import_id, tenant_id, line, outcome, reason, batch, leaf_hash, subject_id, row_key)
    SELECT p_import, p_tenant, r.line, r.outcome, nullif(r.reason, ''), p_batch, r.leaf_hash,
           nullif(r.subject_id, '')::uuid, nullif(r.row_key, ''::bytea)
    FROM unnest(p_lines, p_outcomes, p_reasons, p_leaf_hashes, p_subject_ids, p_row_keys)
         AS r(line, outcome, reason, leaf_hash, subject_id, row_key);
    SELECT coalesce(jsonb_object_agg(o.outcome, o.n), '{}') INTO v_counts
    FROM (SELECT outcome, count(*) AS n FROM unnest(p_outcomes) AS u(outcome) GROUP BY outcome) o;
    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    VALUES (p_tenant, 'import.batch_recorded', p_actor, NULL,
            jsonb_build_object('importId', p_import, 'batch', p_batch, 'rows', cardinality(p_lines),
                               'firstLine', p_lines[1], 'lastLine', p_lines[cardinality(p_lines)],
                               'root', encode(p_root, 'hex'), 'outcomes', v_counts));
    UPDATE imports SET
        rows_recorded = rows_recorded + cardinality(p_lines),
        granted = granted + coalesce((v_counts ->> 'granted')::int, 0),
        pending = pending + coalesce((v_counts ->> 'pending')::int, 0),
        superseded = superseded + coalesce((v_counts ->> 'superseded')::int, 0),
        suppressed = suppressed + coalesce((v_counts ->> 'suppressed')::int, 0),
        duplicate = duplicate + coalesce((v_counts ->> 'duplicate')::int, 0),
        invalid = invalid + coalesce((v_counts ->> 'invalid')::int, 0),
        -- clock_timestamp(), not now(): a chunk that took long must not leave the lease nearly spent.
        lease_until = clock_timestamp() + interval '60 seconds'
    WHERE id = p_import;
    DELETE FROM import_chunks WHERE import_id = p_import AND seq = p_batch;
END
$$;

-- 'import.batch_recorded' joins the audit actions (AuditAction.importBatchRecorded). 0013 added its action by
-- reading the constraint's list and writing it back with one more; that is now a function, so that the next
-- action is one line, not a copy.
CREATE FUNCTION app_add_audit_action(p_action text) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_actions text[];
BEGIN
    SELECT array_agg(m[1]) INTO v_actions
    FROM pg_constraint c
    CROSS JOIN LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([^'']*)''', 'g') AS m
    WHERE c.conname = 'audit_events_action_known' AND c.conrelid = 'audit_events'::regclass;
    IF v_actions IS NULL THEN
        RAISE EXCEPTION 'audit_events_action_known is missing: migration 0008 should have made it';
    END IF;
    ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
    EXECUTE format(
        'ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known CHECK (action IN (%s))',
        (SELECT string_agg(DISTINCT quote_literal(a), ', ' ORDER BY quote_literal(a))
         FROM unnest(array_append(v_actions, p_action)) AS a));
END
$$;
REVOKE EXECUTE ON FUNCTION app_add_audit_action(text) FROM PUBLIC;
SELECT app_add_audit_action('import.batch_recorded');

-- app_record_new_opt_ins (0015) for groups of thousands: an import records its new people through it, a chunk a
-- call. What 0015 did item by item with `= ANY (array)` (quadratic in the group's size, unnoticed at 64 and
-- seconds at 5,000) is done here by joins; p_audit_each false leaves the per-purpose events to the caller's
-- batch event. The answers are 0015's, item for item (GroupedOptInTests compares them with app_record_opt_in's).
DROP FUNCTION app_record_new_opt_ins(uuid, text[], bytea[], uuid[], bytea[], bytea[], bytea[], bytea[], uuid[],
                                     text[], text[], timestamptz[], uuid[], uuid[], bytea[], text[], int[], text[],
                                     uuid[]);
CREATE FUNCTION app_record_new_opt_ins(
    p_tenant uuid, p_channels text[], p_blind_indexes bytea[], p_subject_ids uuid[], p_identifiers bytea[],
    p_wrapped_keys bytea[], p_master_key_ids bytea[], p_suppression_hashes bytea[], p_notice_ids uuid[],
    p_statuses text[], p_methods text[], p_collected_ats timestamptz[], p_collection_ids uuid[],
    p_recorded_bys uuid[], p_provenances bytea[], p_actors text[],
    p_purpose_items int[], p_purposes text[], p_consent_ids uuid[], p_audit_each boolean
) RETURNS TABLE (item int, refusal text, consent_id uuid, purpose text, status text, granted_at timestamptz,
                 change_position bigint)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_refusals text[];
    v_unrefused int[];
    v_candidates int[];
    v_made int[];
    v_late int[];
    -- The purposes of the people made, in the order given, with the second read's verdicts.
    v_item int[];
    v_purpose text[];
    v_consent uuid[];
    v_category text[];
    v_verdict text[];
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF cardinality(p_purpose_items) <> cardinality(p_purposes) OR cardinality(p_purposes) <> cardinality(p_consent_ids)
    THEN
        RAISE EXCEPTION 'app_record_new_opt_ins: purpose arrays of different lengths';
    END IF;

    -- The notice's rules, item by item, as app_record_opt_in checks them. The purposes a notice does not cover
    -- are gathered for all items at once and joined back (a subquery per item scanned every item's purposes).
    WITH items AS (
        SELECT i.k, i.channel, n.id AS notice_id, n.channel AS notice_channel, n.purposes AS notice_purposes
        FROM unnest(p_notice_ids, p_channels) WITH ORDINALITY AS i(notice_id, channel, k)
        LEFT JOIN notices n ON n.id = i.notice_id
    ), uncovered AS (
        SELECT p.item, array_agg(p.purpose ORDER BY p.m) AS keys
        FROM unnest(p_purpose_items, p_purposes) WITH ORDINALITY AS p(item, purpose, m)
        JOIN items i ON i.k = p.item
        WHERE NOT (p.purpose = ANY (coalesce(i.notice_purposes, '{}')))
        GROUP BY p.item
    )
    SELECT array_agg(
               CASE WHEN i.notice_id IS NULL THEN 'CL010'
                    WHEN i.notice_channel <> i.channel THEN 'CL011:' || i.notice_channel
                    WHEN u.keys IS NOT NULL AND cardinality(app_unknown_purposes(u.keys)) > 0
                        THEN 'CL012:' || array_to_string(app_unknown_purposes(u.keys), ',')
                    WHEN u.keys IS NOT NULL THEN 'CL013:' || array_to_string(u.keys, ',')
               END ORDER BY i.k)
    INTO v_refusals
    FROM items i LEFT JOIN uncovered u ON u.item = i.k;
    -- Arrays of text are read by unnest, never by subscript (v_refusals[k] walks the array to k).
    v_unrefused := ARRAY(SELECT r.k FROM unnest(v_refusals) WITH ORDINALITY AS r(refusal, k) WHERE r.refusal IS NULL);

    -- First read of the suppression entries: people with nothing to record are refused before anything is made.
    v_candidates := ARRAY(
        SELECT DISTINCT v.item
        FROM app_new_opt_in_verdicts(p_tenant, v_unrefused, p_suppression_hashes, p_methods, p_collected_ats,
                                     p_purpose_items, p_purposes, p_consent_ids) v
        WHERE v.verdict <> 'suppressed' ORDER BY v.item);
    -- CL015 is app_record_opt_in's answer for someone not held only: someone held (an objection keeps the
    -- person), or named by another item here (who may be held by the time this one is recorded), gets a 201 with
    -- suppressed purposes from it, so is retried there.
    v_refusals := ARRAY(
        SELECT CASE
                   WHEN i.refusal IS NOT NULL OR c.k IS NOT NULL THEN i.refusal
                   WHEN twice.k IS NOT NULL
                     OR EXISTS (SELECT 1 FROM subjects s WHERE s.channel = i.channel AND s.blind_index = i.blind_index)
                   THEN 'retry'
                   ELSE 'CL015'
               END
        FROM unnest(v_refusals, p_channels, p_blind_indexes) WITH ORDINALITY AS i(refusal, channel, blind_index, k)
        LEFT JOIN unnest(v_candidates) AS c(k) ON c.k = i.k
        LEFT JOIN (
            SELECT e.k FROM (
                SELECT j AS k, count(*) OVER (PARTITION BY channel, blind_index) AS named
                FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS x(channel, blind_index, j)
            ) e WHERE e.named > 1
        ) twice ON twice.k = i.k
        ORDER BY i.k);

    -- The subjects with their keys. A person held already is made by nobody and retried; a person named twice here
    -- is made by the first item and the second is retried. Inserted in blind-index order, so that two groups
    -- sharing new people (two instances) take their index locks in the same order rather than deadlock.
    WITH made AS (
        INSERT INTO subjects (id, tenant_id, channel, blind_index, identifier_ciphertext)
        SELECT i.subject_id, p_tenant, i.channel, i.blind_index, i.identifier
        FROM unnest(p_subject_ids, p_channels, p_blind_indexes, p_identifiers)
             WITH ORDINALITY AS i(subject_id, channel, blind_index, identifier, k)
        JOIN unnest(v_candidates) AS w(k) ON w.k = i.k
        ORDER BY i.channel, i.blind_index, i.k
        ON CONFLICT (tenant_id, channel, blind_index) DO NOTHING
        RETURNING id
    )
    SELECT coalesce(array_agg(i.k::int ORDER BY i.k), '{}') INTO v_made
    FROM unnest(p_subject_ids) WITH ORDINALITY AS i(subject_id, k) JOIN made ON made.id = i.subject_id;
    v_refusals := ARRAY(
        SELECT CASE WHEN c.k IS NOT NULL AND m.k IS NULL THEN 'retry' ELSE i.refusal END
        FROM unnest(v_refusals) WITH ORDINALITY AS i(refusal, k)
        LEFT JOIN unnest(v_candidates) AS c(k) ON c.k = i.k
        LEFT JOIN unnest(v_made) AS m(k) ON m.k = i.k
        ORDER BY i.k);
    -- Nobody to write for: the refusals alone, and no table below is touched (an INSERT of no rows still waits
    -- for the table's lock).
    IF cardinality(v_made) = 0 THEN
        RETURN QUERY
            SELECT r.k::int, r.refusal, NULL::uuid, NULL::text, NULL::text, NULL::timestamptz, NULL::bigint
            FROM unnest(v_refusals) WITH ORDINALITY AS r(refusal, k) ORDER BY r.k;
        RETURN;
    END IF;
    INSERT INTO subject_keys (subject_id, tenant_id, wrapped_key, master_key_id)
    SELECT i.subject_id, p_tenant, i.wrapped_key, i.master_key_id
    FROM unnest(p_subject_ids, p_wrapped_keys, p_master_key_ids) WITH ORDINALITY AS i(subject_id, wrapped_key,
                                                                                      master_key_id, k)
    JOIN unnest(v_made) AS w(k) ON w.k = i.k;

    -- Second read, after the insert waited out whatever held these blind indexes.
    SELECT coalesce(array_agg(v.item ORDER BY v.n), '{}'), coalesce(array_agg(v.purpose ORDER BY v.n), '{}'),
           coalesce(array_agg(v.consent_id ORDER BY v.n), '{}'), coalesce(array_agg(v.category ORDER BY v.n), '{}'),
           coalesce(array_agg(v.verdict ORDER BY v.n), '{}')
    INTO v_item, v_purpose, v_consent, v_category, v_verdict
    FROM app_new_opt_in_verdicts(p_tenant, v_made, p_suppression_hashes, p_methods, p_collected_ats,
                                 p_purpose_items, p_purposes, p_consent_ids) v;
    v_late := ARRAY(
        SELECT w.k FROM unnest(v_made) AS w(k)
        EXCEPT
        SELECT r.item FROM unnest(v_item, v_verdict) AS r(item, verdict) WHERE r.verdict <> 'suppressed');
    IF cardinality(v_late) > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'CL016', MESSAGE = 'a suppression entry changed under the group';
    END IF;

    INSERT INTO collections (id, tenant_id, subject_id, notice_id, method, collected_at, received_at, recorded_by,
                             provenance_ciphertext)
    SELECT i.collection_id, p_tenant, i.subject_id, i.notice_id, i.method, i.collected_at, now(), i.recorded_by,
           i.provenance
    FROM unnest(p_collection_ids, p_subject_ids, p_notice_ids, p_methods, p_collected_ats, p_recorded_bys,
                p_provenances)
         WITH ORDINALITY AS i(collection_id, subject_id, notice_id, method, collected_at, recorded_by, provenance, k)
    JOIN unnest(v_made) AS w(k) ON w.k = i.k;

    INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, category, notice_id, status, created_at,
                          granted_at)
    SELECT r.consent_id, p_tenant, r.subject_id, r.channel, r.purpose, r.category, r.notice_id,
           CASE WHEN r.verdict = 'superseded' THEN 'superseded' ELSE r.status END, now(),
           CASE WHEN r.verdict = 'recorded' AND r.status = 'granted' THEN now() END
    FROM app_new_opt_in_rows(v_item, v_purpose, v_consent, v_category, v_verdict, p_subject_ids, p_channels,
                             p_notice_ids, p_statuses, p_methods, p_collection_ids, p_actors) r
    WHERE r.verdict <> 'suppressed' ORDER BY r.n;

    INSERT INTO consent_evidence (consent_id, collection_id, tenant_id)
    SELECT r.consent_id, r.collection_id, p_tenant
    FROM app_new_opt_in_rows(v_item, v_purpose, v_consent, v_category, v_verdict, p_subject_ids, p_channels,
                             p_notice_ids, p_statuses, p_methods, p_collection_ids, p_actors) r
    WHERE r.verdict <> 'suppressed';

    -- app_record_opt_in's order for a new person: what it created, then what it could not grant, each in the order
    -- of the item's purposes.
    -- An import commits to its rows by one event a batch instead (0017, app_record_import_batch).
    IF p_audit_each THEN
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant,
               CASE WHEN r.verdict = 'superseded' THEN 'consent.superseded'
                    WHEN r.verdict = 'suppressed' THEN 'consent.suppressed'
                    WHEN r.status = 'pending' THEN 'consent.pending'
                    ELSE 'consent.granted' END,
               r.actor, r.subject_id,
               CASE WHEN r.verdict = 'suppressed'
                    THEN jsonb_build_object('purpose', r.purpose, 'channel', r.channel, 'noticeId', r.notice_id,
                                            'method', r.method)
                    ELSE jsonb_build_object('consentId', r.consent_id, 'purpose', r.purpose, 'channel', r.channel,
                                            'noticeId', r.notice_id, 'collectionId', r.collection_id, 'method', r.method)
               END
        FROM app_new_opt_in_rows(v_item, v_purpose, v_consent, v_category, v_verdict, p_subject_ids, p_channels,
                                 p_notice_ids, p_statuses, p_methods, p_collection_ids, p_actors) r
        ORDER BY r.item, CASE r.verdict WHEN 'recorded' THEN 1 WHEN 'superseded' THEN 4 ELSE 5 END, r.n;
    END IF;

    RETURN QUERY
        WITH positions AS (
            INSERT INTO consent_change_log (position, tenant_id, channel, blind_index)
            SELECT nextval('consent_changes'), p_tenant, i.channel, i.blind_index
            FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS i(channel, blind_index, k)
            JOIN unnest(v_made) AS w(k) ON w.k = i.k
            ORDER BY i.k
            RETURNING position, channel, blind_index
        ), made AS (
            SELECT i.k::int AS item, x.position
            FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS i(channel, blind_index, k)
            JOIN positions x ON x.channel = i.channel AND x.blind_index = i.blind_index
        )
        SELECT o.item, o.refusal, o.consent_id, o.purpose, o.status, o.granted_at, o.change_position
        FROM (
            SELECT r.k::int AS item, 0 AS n, r.refusal, NULL::uuid AS consent_id,
                   NULL::text AS purpose, NULL::text AS status, NULL::timestamptz AS granted_at,
                   NULL::bigint AS change_position
            FROM unnest(v_refusals) WITH ORDINALITY AS r(refusal, k) WHERE r.refusal IS NOT NULL
            UNION ALL
            SELECT r.item, r.n, NULL, CASE WHEN r.verdict <> 'suppressed' THEN r.consent_id END, r.purpose,
                   CASE r.verdict WHEN 'recorded' THEN r.status ELSE r.verdict END,
                   CASE WHEN r.verdict = 'recorded' AND r.status = 'granted' THEN now() END, m.position
            FROM app_new_opt_in_rows(v_item, v_purpose, v_consent, v_category, v_verdict, p_subject_ids,
                                     p_channels, p_notice_ids, p_statuses, p_methods, p_collection_ids, p_actors) r
            JOIN made m ON m.item = r.item
        ) o
        ORDER BY o.item, o.n;
END
$$;
