-- One person, one subject, for e-mail too (issue 21, finding 7). Addresses are now normalised with an NFC,
-- lower-cased local part and the domain's IDNA ASCII form (SubjectIdentifier.email), so an e-mail subject stored
-- under the old rules has a blind index the server no longer computes, and two subjects may be one person
-- (`Anna@x.it` and `anna@x.it`). After the migrations, `consentd migrate` runs SubjectReindexer: it opens each
-- e-mail subject's identifier and either moves the subject to its new blind index (app_reindex_subject) or, when
-- another subject already holds that index, merges it into that one (app_merge_subject). Keyed hashes come from
-- Swift, as everywhere: the database never sees an identifier.
--
-- Like every app_* function these run with their caller's rights (SECURITY INVOKER, not DEFINER) and name their
-- tenant for row security themselves. They move rows between subjects and delete one, which the runtime role may
-- not do: only the owner, which `consentd migrate` runs as, can use them. EXECUTE is revoked from PUBLIC and
-- runtime_grants.sql grants it to nobody.
--
-- Refusals: CL030 the subjects named cannot be reindexed or merged (message: why).

-- `<tenant> <channel> <hex blind index> `: how app_change_position is told the subject (ConsentChange.payloadPrefix).
CREATE FUNCTION app_change_prefix(p_tenant uuid, p_channel text, p_blind_index bytea) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT p_tenant::text || ' ' || p_channel || ' ' || encode(p_blind_index, 'hex') || ' ' $$;

-- Moves one subject to the blind index its identifier has under today's normalisation. When another subject holds
-- that index the UPDATE fails on the unique index (23505), and the caller merges instead. Both indexes get a
-- change-log row, so every instance's check cache drops what it held under either: the old state, and an answer of
-- "nobody" under the new one. Returns the change position; NULL when the subject already has that index.
CREATE FUNCTION app_reindex_subject(p_tenant uuid, p_subject uuid, p_new_blind_index bytea) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_channel text;
    v_old bytea;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF p_new_blind_index IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'CL030', MESSAGE = 'a subject held is always found by a blind index';
    END IF;
    SELECT s.channel, s.blind_index INTO v_channel, v_old FROM subjects s
    WHERE s.id = p_subject AND s.tenant_id = p_tenant AND s.erased_at IS NULL
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CL030', MESSAGE = 'the tenant holds no such subject';
    END IF;
    IF v_old = p_new_blind_index THEN
        RETURN NULL;
    END IF;
    UPDATE subjects SET blind_index = p_new_blind_index WHERE id = p_subject;
    IF v_old IS NOT NULL THEN
        PERFORM app_change_position('', app_change_prefix(p_tenant, v_channel, v_old));
    END IF;
    RETURN app_change_position('', app_change_prefix(p_tenant, v_channel, p_new_blind_index));
END
$$;

-- Makes two subjects of one person one: every row of the duplicate moves to the survivor, and the duplicate's row
-- and data key are deleted. Nothing of the person's history is dropped, and the most restrictive state wins:
--   * a stop by either is a stop by the person. Each side's stops (consent_stops, and its withdrawn consents, since
--     withdrawals before 0012 left no stop row) withdraw the other side's active consents they cover, unless the
--     consent was given after the stop (newest evidence collected later), exactly as app_stop decides for one
--     subject; one `consent.withdrawn` event each, with the stop's source;
--   * both may hold an active consent to the same purpose, which one subject cannot (consents_one_active): the
--     granted one, else the newer, stays in force; the other is kept with its evidence as 'superseded', granting
--     nothing, with a `consent.superseded` event naming the one kept;
--   * the platform facts are the latest of each (a WhatsApp marketing stop is never lost); first seen the earliest.
-- Then one `subject.merged` event with the counts, and a change-log row for each subject's blind index, so every
-- instance's check cache drops both. Audit events are evidence and keep their subject_ref: the duplicate's stay
-- under its id, which `subject.merged` (and each event above, as mergedSubjectRef) names. Suppression entries are
-- keyed by identifier, not subject: the caller carries them (SubjectReindexer).
--
-- Ciphertexts are sealed under a subject's own data key and bound to its id: the caller must have re-sealed the
-- duplicate's (collections' provenance, interactions' texts, consent sessions' page URLs) under the survivor's key
-- first, in the same transaction. The database cannot open them. Returns the survivor's change position.
CREATE FUNCTION app_merge_subject(p_tenant uuid, p_duplicate uuid, p_survivor uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_actor constant text := 'system:subject_merge';
    v_channel text;
    v_duplicate_index bytea;
    v_survivor_index bytea;
    v_withdrawn integer;
    v_superseded integer;
    v_consents integer;
    v_collections integer;
    v_interactions integer;
    v_stops integer;
    v_requests integer;
    v_sessions integer;
    v_reviews integer;
    v_position bigint;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF p_duplicate = p_survivor THEN
        RAISE EXCEPTION USING ERRCODE = 'CL030', MESSAGE = 'a subject cannot be merged into itself';
    END IF;
    -- FOR UPDATE, as an erasure takes it: writes holding either subject (FOR KEY SHARE) finish first, and later
    -- ones wait, then no longer find the duplicate. Both rows in id order, so two merges never wait on each other.
    PERFORM 1 FROM subjects s
    WHERE s.id IN (p_duplicate, p_survivor) AND s.tenant_id = p_tenant
    ORDER BY s.id
    FOR UPDATE;
    SELECT s.channel, s.blind_index INTO v_channel, v_duplicate_index FROM subjects s
    WHERE s.id = p_duplicate AND s.tenant_id = p_tenant AND s.erased_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CL030', MESSAGE = 'the tenant holds no such duplicate subject';
    END IF;
    SELECT s.blind_index INTO v_survivor_index FROM subjects s
    WHERE s.id = p_survivor AND s.tenant_id = p_tenant AND s.channel = v_channel AND s.erased_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CL030', MESSAGE = 'the tenant holds no such survivor on the same channel';
    END IF;

    WITH stops AS (
        SELECT st.subject_id, st.purpose, st.category, st.stopped_at, st.source FROM consent_stops st
        WHERE st.subject_id IN (p_duplicate, p_survivor)
        UNION ALL
        SELECT c.subject_id, c.purpose, NULL, c.revoked_at, c.revoke_source FROM consents c
        WHERE c.subject_id IN (p_duplicate, p_survivor) AND c.status = 'withdrawn'
    ), covered AS (
        SELECT c.id, latest.source
        FROM consents c
        CROSS JOIN LATERAL (
            SELECT st.stopped_at, st.source FROM stops st
            WHERE st.subject_id <> c.subject_id
              AND (st.purpose = c.purpose
                   OR (st.purpose IS NULL
                       AND (st.category IS NULL
                            OR st.category = coalesce(c.category, app_purpose_category(c.purpose)))))
            ORDER BY st.stopped_at DESC
            LIMIT 1
        ) latest
        WHERE c.subject_id IN (p_duplicate, p_survivor) AND c.status IN ('granted', 'pending')
          AND (latest.stopped_at >= now() OR NOT EXISTS (
              SELECT 1 FROM consent_evidence e JOIN collections col ON col.id = e.collection_id
              WHERE e.consent_id = c.id AND col.collected_at > latest.stopped_at))
    ), withdrawn AS (
        UPDATE consents c
        SET status = 'withdrawn', revoked_at = now(), revoke_source = covered.source, revoked_by = NULL
        FROM covered WHERE c.id = covered.id
        RETURNING c.id, c.purpose, c.revoke_source
    ), events AS (
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant, 'consent.withdrawn', v_actor, p_survivor,
               jsonb_build_object('consentId', w.id, 'purpose', w.purpose, 'channel', v_channel,
                                  'source', w.revoke_source, 'mergedSubjectRef', p_duplicate)
        FROM withdrawn w ORDER BY w.purpose COLLATE "C", w.id::text COLLATE "C"
    )
    SELECT count(*) INTO v_withdrawn FROM withdrawn;

    WITH ranked AS (
        SELECT c.id, c.purpose, first_value(c.id) OVER w AS kept, row_number() OVER w AS n
        FROM consents c
        WHERE c.subject_id IN (p_duplicate, p_survivor) AND c.status IN ('granted', 'pending')
        WINDOW w AS (PARTITION BY c.purpose ORDER BY (c.status = 'granted') DESC, c.created_at DESC, c.id)
    ), superseded AS (
        UPDATE consents c SET status = 'superseded'
        FROM ranked r WHERE c.id = r.id AND r.n > 1
        RETURNING c.id, c.purpose, r.kept
    ), events AS (
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant, 'consent.superseded', v_actor, p_survivor,
               jsonb_build_object('consentId', s.id, 'purpose', s.purpose, 'channel', v_channel,
                                  'supersededBy', s.kept, 'mergedSubjectRef', p_duplicate)
        FROM superseded s ORDER BY s.purpose COLLATE "C", s.id::text COLLATE "C"
    )
    SELECT count(*) INTO v_superseded FROM superseded;

    -- Every table with a foreign key to subjects (the DELETE below fails, and the merge with it, on one missed).
    UPDATE consents SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_consents = ROW_COUNT;
    UPDATE collections SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_collections = ROW_COUNT;
    UPDATE interactions SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_interactions = ROW_COUNT;
    UPDATE consent_stops SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_stops = ROW_COUNT;
    UPDATE subject_requests SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_requests = ROW_COUNT;
    UPDATE consent_sessions SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    UPDATE opt_out_reviews SET subject_id = p_survivor WHERE subject_id = p_duplicate;
    GET DIAGNOSTICS v_reviews = ROW_COUNT;

    UPDATE subjects s
    SET last_inbound_at = greatest(s.last_inbound_at, d.last_inbound_at),
        entry_point_at = greatest(s.entry_point_at, d.entry_point_at),
        marketing_stopped_at = greatest(s.marketing_stopped_at, d.marketing_stopped_at),
        created_at = least(s.created_at, d.created_at)
    FROM subjects d
    WHERE s.id = p_survivor AND d.id = p_duplicate;
    DELETE FROM subject_keys WHERE subject_id = p_duplicate;
    DELETE FROM subjects WHERE id = p_duplicate;

    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    VALUES (p_tenant, 'subject.merged', v_actor, p_survivor,
            jsonb_build_object('channel', v_channel, 'mergedSubjectRef', p_duplicate,
                               'consentsMoved', v_consents, 'consentsWithdrawn', v_withdrawn,
                               'consentsSuperseded', v_superseded, 'collectionsMoved', v_collections,
                               'interactionsMoved', v_interactions, 'stopsMoved', v_stops,
                               'requestsMoved', v_requests, 'sessionsMoved', v_sessions, 'reviewsMoved', v_reviews));

    IF v_duplicate_index IS NOT NULL THEN
        PERFORM app_change_position('', app_change_prefix(p_tenant, v_channel, v_duplicate_index));
    END IF;
    IF v_survivor_index IS NOT NULL THEN
        v_position := app_change_position('', app_change_prefix(p_tenant, v_channel, v_survivor_index));
    END IF;
    RETURN v_position;
END
$$;

REVOKE EXECUTE ON FUNCTION app_change_prefix(uuid, text, bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION app_reindex_subject(uuid, uuid, bytea) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION app_merge_subject(uuid, uuid, uuid) FROM PUBLIC;

-- 'subject.merged' joins the audit actions (AuditAction.subjectMerged). The list is read from the constraint as it
-- stands rather than written out again, so that a migration written beside this one cannot be silently undone by
-- a list restated here. PostgreSQL stores the same IN list as before (ARRAY['…'::text, …]), which is
-- what SchemaVocabularyTests reads.
DO $$
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
         FROM unnest(array_append(v_actions, 'subject.merged')) AS a));
END
$$;
