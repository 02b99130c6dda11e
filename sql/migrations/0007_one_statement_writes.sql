-- The consent lifecycle's hot writes, each one statement (issue 18): a withdrawal reaches the database in one round
-- trip, an opt-in in two (the first reads the person's data key, or finds there is none, so that Swift can seal
-- the provenance), each with its audit events and change position. Encryption stays in Swift: these functions only
-- store ciphertext and keyed hashes they are given.
--
-- Each function names its tenant for row-level security itself (SET LOCAL: it ends with the statement's
-- transaction), so it can run as a statement of its own, outside an explicit transaction, where a single
-- statement is atomic. `#variable_conflict use_column`: a name that is both a result column and a table column
-- means the table's. Refusals are raised with SQLSTATEs of class CL, which the store maps to its errors:
--   CL010 notice not found           CL011 notice for another channel (message: its channel)
--   CL012 unknown purposes (message: the keys, comma-separated)
--   CL013 purposes not in the notice (message: the keys)   CL015 on the suppression list

-- Withdraws the subject's active consents (those named, or all when p_purposes is NULL) with one
-- `consent.withdrawn` event each, in (purpose, id) order. Runs inside the caller's statement or transaction.
CREATE FUNCTION app_withdraw_consents(
    p_tenant uuid, p_subject_id uuid, p_channel text, p_purposes text[], p_source text, p_actor text, p_key_id uuid
) RETURNS TABLE (consent_id uuid, purpose text, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH withdrawn AS (
        UPDATE consents c SET status = 'withdrawn', revoked_at = now(), revoke_source = p_source, revoked_by = p_key_id
        WHERE c.subject_id = p_subject_id AND c.status IN ('granted', 'pending')
          AND (p_purposes IS NULL OR c.purpose = ANY (p_purposes))
        RETURNING c.id, c.purpose, c.revoked_at
    ), events AS (
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant, 'consent.withdrawn', p_actor, p_subject_id,
               jsonb_build_object('consentId', w.id, 'purpose', w.purpose, 'channel', p_channel, 'source', p_source)
        FROM withdrawn w ORDER BY w.purpose COLLATE "C", w.id::text COLLATE "C"
    )
    SELECT w.id, w.purpose, w.revoked_at FROM withdrawn w ORDER BY w.purpose COLLATE "C", w.id::text COLLATE "C";
END
$$;

-- The keys among p_keys that name no purpose the tenant can see, in the order given.
CREATE FUNCTION app_unknown_purposes(p_keys text[]) RETURNS text[]
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(array_agg(k ORDER BY n), '{}')
    FROM unnest(p_keys) WITH ORDINALITY AS u(k, n)
    WHERE NOT EXISTS (SELECT 1 FROM purposes p WHERE p.key = k)
$$;

-- Takes the next change position and queues its notification (payload: p_change_prefix || position), which
-- PostgreSQL delivers when the transaction commits.
CREATE FUNCTION app_change_position(p_notify_channel text, p_change_prefix text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_position bigint := nextval('consent_changes');
BEGIN
    PERFORM pg_notify(p_notify_channel, p_change_prefix || v_position::text);
    RETURN v_position;
END
$$;

-- `POST /v1/revocations`, the platform's marketing stop, the console's withdrawal: finds the subject by blind
-- index and withdraws. Someone the tenant does not know who withdraws everything objects to being messaged: with
-- p_suppression_hash given, they are kept on the suppression list. Always one row: the change position, then
-- each withdrawn consent (none: one row with NULLs).
CREATE FUNCTION app_revoke(
    p_tenant uuid, p_channel text, p_blind_index bytea, p_purposes text[], p_source text, p_actor text, p_key_id uuid,
    p_suppression_hash bytea, p_notify_channel text, p_change_prefix text
) RETURNS TABLE (change_position bigint, consent_id uuid, purpose text, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_unknown text[];
    v_subject uuid;
    v_position bigint;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF p_purposes IS NOT NULL THEN
        v_unknown := app_unknown_purposes(p_purposes);
        IF cardinality(v_unknown) > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'CL012', MESSAGE = array_to_string(v_unknown, ',');
        END IF;
    END IF;
    SELECT s.id INTO v_subject FROM subjects s
    WHERE s.channel = p_channel AND s.blind_index = p_blind_index AND s.erased_at IS NULL;
    IF v_subject IS NULL AND p_purposes IS NULL AND p_suppression_hash IS NOT NULL THEN
        WITH added AS (
            INSERT INTO suppressions (tenant_id, keyed_hash, reason) VALUES (p_tenant, p_suppression_hash, 'objected')
            ON CONFLICT (tenant_id, keyed_hash) DO NOTHING RETURNING 1
        )
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant, 'suppression.added', p_actor, NULL, jsonb_build_object('channel', p_channel, 'reason', 'objected')
        FROM added;
    END IF;
    v_position := app_change_position(p_notify_channel, p_change_prefix);
    IF v_subject IS NULL THEN
        RETURN QUERY SELECT v_position, NULL::uuid, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY
    WITH w AS MATERIALIZED (SELECT * FROM app_withdraw_consents(p_tenant, v_subject, p_channel, p_purposes, p_source, p_actor, p_key_id))
    SELECT v_position, w.consent_id, w.purpose, w.revoked_at FROM w
    UNION ALL
    SELECT v_position, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM w);
END
$$;

-- An existing subject's id and wrapped data key, for sealing an opt-in's provenance before the opt-in itself.
CREATE FUNCTION app_subject_key(p_tenant uuid, p_channel text, p_blind_index bytea)
RETURNS TABLE (subject_id uuid, wrapped_key bytea, master_key_id bytea)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    RETURN QUERY
        SELECT s.id, k.wrapped_key, k.master_key_id FROM subjects s JOIN subject_keys k ON k.subject_id = s.id
        WHERE s.channel = p_channel AND s.blind_index = p_blind_index AND s.erased_at IS NULL;
END
$$;

-- `POST /v1/consents` and a consent session's acceptance, in the phases of ConsentLedger.recordOptIn: the notice
-- is checked; the subject is taken (p_identifier NULL: the existing p_subject_id, which must still be there) or
-- made (with its wrapped data key); an import is refused for a suppressed person (p_suppression_hash given); the
-- collection and the new consents are inserted; purposes already active are reconciled (a stale pending consent
-- expires and a new one replaces it, a direct opt-in confirms a pending one, an active one gains this collection
-- as evidence); then the evidence links, the audit events and the change position. Returns each consent the
-- opt-in names, in the order of p_purposes, with the change position; no row when the subject changed meanwhile.
CREATE FUNCTION app_record_opt_in(
    p_tenant uuid, p_channel text, p_blind_index bytea, p_subject_id uuid, p_identifier bytea, p_wrapped_key bytea,
    p_master_key_id bytea, p_suppression_hash bytea, p_notice_id uuid, p_purposes text[], p_consent_ids uuid[],
    p_status text, p_method text, p_collected_at timestamptz, p_collection_id uuid, p_recorded_by uuid,
    p_provenance bytea, p_actor text, p_pending_lifetime double precision, p_notify_channel text, p_change_prefix text
) RETURNS TABLE (consent_id uuid, purpose text, status text, granted_at timestamptz, change_position bigint)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_notice_channel text;
    v_notice_purposes text[];
    v_uncovered text[];
    v_unknown text[];
    v_created uuid[];
    v_fresh uuid[];
    v_active text[];
    v_expired_ids uuid[] := '{}';
    v_expired_purposes text[] := '{}';
    v_confirmed uuid[] := '{}';
    v_unchanged uuid[] := '{}';
    v_position bigint;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);

    SELECT n.channel, n.purposes INTO v_notice_channel, v_notice_purposes FROM notices n WHERE n.id = p_notice_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'CL010', MESSAGE = 'notice not found';
    END IF;
    IF v_notice_channel <> p_channel THEN
        RAISE EXCEPTION USING ERRCODE = 'CL011', MESSAGE = v_notice_channel;
    END IF;
    SELECT coalesce(array_agg(k ORDER BY n), '{}') INTO v_uncovered
    FROM unnest(p_purposes) WITH ORDINALITY AS u(k, n) WHERE NOT (k = ANY (v_notice_purposes));
    IF cardinality(v_uncovered) > 0 THEN
        v_unknown := app_unknown_purposes(v_uncovered);
        IF cardinality(v_unknown) > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'CL012', MESSAGE = array_to_string(v_unknown, ',');
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'CL013', MESSAGE = array_to_string(v_uncovered, ',');
    END IF;

    -- FOR KEY SHARE conflicts only with an erasure's FOR UPDATE: this opt-in lands on a subject that stays, or
    -- waits for the erasure and is retried as a new subject (docs/architecture.md, "Erasure"). A retry is asked for
-- by returning no row rather than by an error, so that a caller inside a transaction can try again in it.
    IF p_identifier IS NULL THEN
        PERFORM 1 FROM subjects s
        WHERE s.id = p_subject_id AND s.blind_index = p_blind_index AND s.erased_at IS NULL FOR KEY SHARE;
        IF NOT FOUND THEN
            RETURN;  -- erased since the caller read it: no row, nothing written, and the caller tries again
        END IF;
    ELSE
        INSERT INTO subjects (id, tenant_id, channel, blind_index, identifier_ciphertext)
        VALUES (p_subject_id, p_tenant, p_channel, p_blind_index, p_identifier)
        ON CONFLICT (tenant_id, channel, blind_index) DO NOTHING;
        IF NOT FOUND THEN
            RETURN;  -- another write made the subject first: no row, nothing written, and the caller tries again
        END IF;
        INSERT INTO subject_keys (subject_id, tenant_id, wrapped_key, master_key_id)
        VALUES (p_subject_id, p_tenant, p_wrapped_key, p_master_key_id);
    END IF;
    -- After the subject statement, which waits out a concurrent erasure: this one sees the entry it committed.
    IF p_suppression_hash IS NOT NULL
        AND EXISTS (SELECT 1 FROM suppressions x WHERE x.tenant_id = p_tenant AND x.keyed_hash = p_suppression_hash)
    THEN
        RAISE EXCEPTION USING ERRCODE = 'CL015', MESSAGE = 'on the suppression list';
    END IF;

    INSERT INTO collections (id, tenant_id, subject_id, notice_id, method, collected_at, received_at, recorded_by,
                             provenance_ciphertext)
    VALUES (p_collection_id, p_tenant, p_subject_id, p_notice_id, p_method, p_collected_at, now(), p_recorded_by,
            p_provenance);
    WITH inserted AS (
        INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, notice_id, status, created_at, granted_at)
        SELECT w.id, p_tenant, p_subject_id, p_channel, w.purpose, p_notice_id, p_status, now(),
               CASE WHEN p_status = 'granted' THEN now() END
        FROM unnest(p_consent_ids, p_purposes) AS w(id, purpose)
        ON CONFLICT (subject_id, purpose) WHERE status IN ('granted', 'pending') DO NOTHING
        RETURNING id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_created FROM inserted;
    SELECT coalesce(array_agg(w.purpose ORDER BY w.n), '{}') INTO v_active
    FROM unnest(p_consent_ids, p_purposes) WITH ORDINALITY AS w(id, purpose, n) WHERE NOT (w.id = ANY (v_created));

    IF cardinality(v_active) > 0 THEN
        WITH expired AS (
            UPDATE consents c SET status = 'expired', expired_at = now()
            WHERE c.subject_id = p_subject_id AND c.purpose = ANY (v_active) AND c.status = 'pending'
              AND c.created_at <= now() - make_interval(secs => p_pending_lifetime)
            RETURNING c.id, c.purpose
        )
        SELECT coalesce(array_agg(e.id ORDER BY array_position(p_purposes, e.purpose)), '{}'),
               coalesce(array_agg(e.purpose ORDER BY array_position(p_purposes, e.purpose)), '{}')
        INTO v_expired_ids, v_expired_purposes FROM expired e;
        IF cardinality(v_expired_purposes) > 0 THEN
            WITH fresh AS (
                INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, notice_id, status, created_at, granted_at)
                SELECT gen_random_uuid(), p_tenant, p_subject_id, p_channel, k, p_notice_id, p_status, now(),
                       CASE WHEN p_status = 'granted' THEN now() END
                FROM unnest(v_expired_purposes) AS k
                RETURNING id
            )
            SELECT coalesce(array_agg(id), '{}') INTO v_fresh FROM fresh;
            v_created := v_created || v_fresh;
            v_active := ARRAY(SELECT k FROM unnest(v_active) AS k WHERE NOT (k = ANY (v_expired_purposes)));
        END IF;
    END IF;
    IF cardinality(v_active) > 0 THEN
        IF p_status = 'granted' THEN
            WITH confirmed AS (
                UPDATE consents c SET status = 'granted', granted_at = now()
                WHERE c.subject_id = p_subject_id AND c.purpose = ANY (v_active) AND c.status = 'pending'
                RETURNING c.id
            )
            SELECT coalesce(array_agg(id), '{}') INTO v_confirmed FROM confirmed;
        END IF;
        SELECT coalesce(array_agg(c.id), '{}') INTO v_unchanged FROM consents c
        WHERE c.subject_id = p_subject_id AND c.purpose = ANY (v_active) AND c.status IN ('granted', 'pending')
          AND NOT (c.id = ANY (v_confirmed));
    END IF;

    INSERT INTO consent_evidence (consent_id, collection_id, tenant_id)
    SELECT unnest(v_created || v_confirmed || v_unchanged), p_collection_id, p_tenant;
    -- Expiries first, then what this opt-in created, then what it confirmed or found already in force; each group
    -- in the order of p_purposes.
    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    SELECT p_tenant, e.action, p_actor, p_subject_id, e.data
    FROM (
        SELECT 0 AS phase, x.n AS position, 'consent.expired' AS action,
               jsonb_build_object('consentId', x.id, 'purpose', x.purpose, 'channel', p_channel) AS data
        FROM unnest(v_expired_ids, v_expired_purposes) WITH ORDINALITY AS x(id, purpose, n)
        UNION ALL
        SELECT CASE WHEN c.id = ANY (v_created) THEN 1 WHEN c.id = ANY (v_confirmed) THEN 2 ELSE 3 END,
               array_position(p_purposes, c.purpose),
               CASE WHEN c.id = ANY (v_confirmed) THEN 'consent.confirmed'
                    WHEN NOT (c.id = ANY (v_created)) THEN 'consent.reconfirmed'
                    WHEN c.status = 'pending' THEN 'consent.pending'
                    ELSE 'consent.granted' END,
               jsonb_build_object('consentId', c.id, 'purpose', c.purpose, 'channel', p_channel,
                                  'noticeId', p_notice_id, 'collectionId', p_collection_id, 'method', p_method)
        FROM consents c WHERE c.id = ANY (v_created || v_confirmed || v_unchanged)
    ) e
    ORDER BY e.phase, e.position;

    v_position := app_change_position(p_notify_channel, p_change_prefix);
    RETURN QUERY
        SELECT c.id, c.purpose, c.status, c.granted_at, v_position FROM consents c
        WHERE c.id = ANY (v_created || v_confirmed || v_unchanged)
        ORDER BY array_position(p_purposes, c.purpose);
END
$$;
