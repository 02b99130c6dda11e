-- Opt-ins of people the tenant does not hold yet, many in one statement (issue 18: group commit).
--
-- app_record_opt_in costs the database about twenty statements of PL/pgSQL a call, each with its row-level
-- security and foreign-key probes; concurrent opt-ins queue on that CPU, not on the commit. This function records
-- the opt-ins of a whole group of new people in a fixed number of set-based statements, so that what a statement
-- costs to start is paid once a group. The service sends it the opt-ins that arrive together (`OptInGroups`).
--
-- Each item is what app_record_opt_in would be given with p_identifier set (a new subject: its id, its identifier
-- and data key, already sealed by the service), and gets the same answer:
--   refused   'CL010' notice not found; 'CL011:<channel>' the notice is for another channel; 'CL012:<keys>' unknown
--             purposes; 'CL013:<keys>' purposes the notice does not cover; 'CL015' on the suppression list with
--             nothing to record. Nothing is written for it, no subject is made;
--   retry     the person is held already (or named twice in the group): nothing is written for it, and the service
--             records it through app_record_opt_in, which reconciles with what the person has;
--   recorded  the subject, its key, the collection, the consents (granted, pending or superseded) with their
--             evidence, the audit events in app_record_opt_in's order, and a change position.
-- A new person has no stops and no consents, so the only rules that apply are the notice's and the suppression
-- entry's (0012): in scope and imported is suppressed, collected at or before the entry's stop is superseded.
--
-- The suppression entries are read after the subjects are inserted, as app_record_opt_in reads them: an erasure in
-- progress holds the person's blind index, the insert waits it out, and the entry it committed is then seen. A
-- first read, before the insert, only keeps people with nothing to record from being made. If the second read
-- leaves someone the first did not with nothing to record (an objection or erasure committed in between), the
-- whole group is refused with CL016 and the service records every item alone: subjects cannot be deleted by the
-- runtime role, and a refusal must leave no subject behind.
--
-- Rows: for every item, in item order, either one row with its refusal ('retry' included), or one row per purpose
-- in the order given (a suppressed purpose has no consent id), each with the item's change position.
-- Each purpose of each item named in p_items, with its category and its verdict against the person's suppression
-- entry as it stands now: 'suppressed', 'superseded' or 'recorded' (0012's rules for someone with no stops of their
-- own). It reads with the snapshot of the statement that calls it, so two calls in two statements can differ.
--
-- Two costs found by profiling a group's statement, and avoided here and below: an element of a bytea[] parameter
-- is found by walking the array, so the item arrays are read by unnest, never by subscript; and a LANGUAGE sql
-- function that is not inlined is parsed and planned again at every call, so the helpers are PL/pgSQL, whose
-- plans are kept for the session, and the purposes' categories are read in one query rather than by
-- app_purpose_category for each.
CREATE FUNCTION app_new_opt_in_verdicts(
    p_tenant uuid, p_items int[], p_suppression_hashes bytea[], p_methods text[], p_collected_ats timestamptz[],
    p_purpose_items int[], p_purposes text[], p_consent_ids uuid[]
) RETURNS TABLE (n bigint, item int, purpose text, consent_id uuid, category text, verdict text)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH items AS (
        SELECT i.k::int AS item, i.method, i.collected_at, x.scope,
               coalesce(x.stopped_at, x.created_at) AS stopped_at
        FROM unnest(p_suppression_hashes, p_methods, p_collected_ats) WITH ORDINALITY AS i(hash, method, collected_at, k)
        JOIN unnest(p_items) AS w(k) ON w.k = i.k
        LEFT JOIN suppressions x ON x.tenant_id = p_tenant AND x.keyed_hash = i.hash
    ), categories AS (
        -- app_purpose_category's rule: the tenant's own purpose before the built-in one of the same key.
        SELECT DISTINCT ON (c.key) c.key, c.category FROM purposes c
        WHERE c.key = ANY (p_purposes) ORDER BY c.key, c.tenant_id NULLS LAST
    )
    SELECT p.n, p.item, p.purpose, p.consent_id, c.category,
           CASE WHEN s.in_scope AND i.method = 'import' THEN 'suppressed'
                WHEN s.in_scope AND least(i.collected_at, now()) <= i.stopped_at THEN 'superseded'
                ELSE 'recorded' END
    FROM unnest(p_purpose_items, p_purposes, p_consent_ids) WITH ORDINALITY AS p(item, purpose, consent_id, n)
    JOIN items i ON i.item = p.item
    LEFT JOIN categories c ON c.key = p.purpose
    CROSS JOIN LATERAL (
        SELECT coalesce(i.scope = 'all' OR (i.scope = 'marketing' AND c.category = 'marketing'), false) AS in_scope
    ) s;
END
$$;

-- The purposes' rows of the people made, each beside its item's fields: what the consents, their evidence, the
-- audit events and the answer are written from.
CREATE FUNCTION app_new_opt_in_rows(
    p_items int[], p_purposes text[], p_consent_ids uuid[], p_categories text[], p_verdicts text[],
    p_subject_ids uuid[], p_channels text[], p_notice_ids uuid[], p_statuses text[], p_methods text[],
    p_collection_ids uuid[], p_actors text[]
) RETURNS TABLE (n bigint, item int, purpose text, consent_id uuid, category text, verdict text, subject_id uuid,
                 channel text, notice_id uuid, status text, method text, collection_id uuid, actor text)
LANGUAGE plpgsql IMMUTABLE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT r.n, r.item, r.purpose, r.consent_id, r.category, r.verdict, i.subject_id, i.channel, i.notice_id,
           i.status, i.method, i.collection_id, i.actor
    FROM unnest(p_items, p_purposes, p_consent_ids, p_categories, p_verdicts)
         WITH ORDINALITY AS r(item, purpose, consent_id, category, verdict, n)
    JOIN unnest(p_subject_ids, p_channels, p_notice_ids, p_statuses, p_methods, p_collection_ids, p_actors)
         WITH ORDINALITY AS i(subject_id, channel, notice_id, status, method, collection_id, actor, k)
      ON i.k = r.item;
END
$$;

CREATE FUNCTION app_record_new_opt_ins(
    p_tenant uuid, p_channels text[], p_blind_indexes bytea[], p_subject_ids uuid[], p_identifiers bytea[],
    p_wrapped_keys bytea[], p_master_key_ids bytea[], p_suppression_hashes bytea[], p_notice_ids uuid[],
    p_statuses text[], p_methods text[], p_collected_ats timestamptz[], p_collection_ids uuid[],
    p_recorded_bys uuid[], p_provenances bytea[], p_actors text[],
    p_purpose_items int[], p_purposes text[], p_consent_ids uuid[]
) RETURNS TABLE (item int, refusal text, consent_id uuid, purpose text, status text, granted_at timestamptz,
                 change_position bigint)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_count int := cardinality(p_subject_ids);
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
    v_k int;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF cardinality(p_purpose_items) <> cardinality(p_purposes) OR cardinality(p_purposes) <> cardinality(p_consent_ids)
    THEN
        RAISE EXCEPTION 'app_record_new_opt_ins: purpose arrays of different lengths';
    END IF;

    -- The notice's rules, item by item, as app_record_opt_in checks them.
    SELECT array_agg(
               CASE WHEN n.id IS NULL THEN 'CL010'
                    WHEN n.channel <> i.channel THEN 'CL011:' || n.channel
                    WHEN cardinality(u.uncovered) > 0 AND cardinality(app_unknown_purposes(u.uncovered)) > 0
                        THEN 'CL012:' || array_to_string(app_unknown_purposes(u.uncovered), ',')
                    WHEN cardinality(u.uncovered) > 0 THEN 'CL013:' || array_to_string(u.uncovered, ',')
               END ORDER BY i.k)
    INTO v_refusals
    FROM unnest(p_notice_ids, p_channels) WITH ORDINALITY AS i(notice_id, channel, k)
    LEFT JOIN notices n ON n.id = i.notice_id
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(p.purpose ORDER BY p.m), '{}') AS uncovered
        FROM unnest(p_purpose_items, p_purposes) WITH ORDINALITY AS p(item, purpose, m)
        WHERE p.item = i.k AND NOT (p.purpose = ANY (coalesce(n.purposes, '{}')))
    ) u;
    v_unrefused := ARRAY(SELECT k FROM generate_series(1, v_count) AS k WHERE v_refusals[k] IS NULL);

    -- First read of the suppression entries: people with nothing to record are refused before anything is made.
    v_candidates := ARRAY(
        SELECT DISTINCT v.item
        FROM app_new_opt_in_verdicts(p_tenant, v_unrefused, p_suppression_hashes, p_methods, p_collected_ats,
                                     p_purpose_items, p_purposes, p_consent_ids) v
        WHERE v.verdict <> 'suppressed' ORDER BY v.item);
    -- CL015 is app_record_opt_in's answer for someone not held only: someone held (an objection keeps the
    -- person), or named by another item here (who may be held by the time this one is recorded), gets a 201 with
    -- suppressed purposes from it, so is retried there.
    FOREACH v_k IN ARRAY v_unrefused LOOP
        IF NOT (v_k = ANY (v_candidates)) THEN
            v_refusals[v_k] := CASE
                WHEN EXISTS (SELECT 1 FROM subjects s
                             WHERE s.channel = p_channels[v_k] AND s.blind_index = p_blind_indexes[v_k])
                  OR EXISTS (SELECT 1 FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS e(channel, blind_index, j)
                             WHERE e.j <> v_k AND e.channel = p_channels[v_k]
                               AND e.blind_index = p_blind_indexes[v_k])
                THEN 'retry' ELSE 'CL015' END;
        END IF;
    END LOOP;

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
    FOREACH v_k IN ARRAY v_candidates LOOP
        IF NOT (v_k = ANY (v_made)) THEN
            v_refusals[v_k] := 'retry';
        END IF;
    END LOOP;
    -- Nobody to write for: the refusals alone, and no table below is touched (an INSERT of no rows still waits
    -- for the table's lock).
    IF cardinality(v_made) = 0 THEN
        RETURN QUERY
            SELECT k::int, v_refusals[k], NULL::uuid, NULL::text, NULL::text, NULL::timestamptz, NULL::bigint
            FROM generate_series(1, v_count) AS k ORDER BY k;
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
        WHERE NOT EXISTS (SELECT 1 FROM unnest(v_item, v_verdict) AS r(item, verdict)
                          WHERE r.item = w.k AND r.verdict <> 'suppressed'));
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
            SELECT k::int AS item, 0 AS n, v_refusals[k] AS refusal, NULL::uuid AS consent_id,
                   NULL::text AS purpose, NULL::text AS status, NULL::timestamptz AS granted_at,
                   NULL::bigint AS change_position
            FROM generate_series(1, v_count) AS k WHERE v_refusals[k] IS NOT NULL
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
