-- Withdrawals in groups (issue 18), as 0015 does for new people's opt-ins: app_revoke for many people in a fixed
-- number of set-based statements. The service sends it the withdrawals that arrive together (`WriteGroups`).
--
-- Each item is what app_revoke would be given (p_all: every purpose on the channel; otherwise the item's rows of
-- p_purpose_items/p_purposes), and gets the same answer:
--   refused   'CL012:<keys>' unknown purposes: nothing is written for it;
--   retry     the person is named by an earlier item of the group: nothing is written for it, and the service
--             withdraws it through app_revoke once the group has committed;
--   withdrawn the change position, then each consent withdrawn in (purpose, id) order, or one row with the
--             position alone when there was nothing to withdraw. For a person the tenant holds, the stop is kept
--             (app_stop: one row for every purpose, or one per purpose named) and each withdrawal has its
--             audit event; someone the tenant does not hold who withdraws everything, with a suppression hash
--             given (not empty), is kept on the suppression list with its `suppression.added` event.
-- The stop is dated now, as app_revoke's is, so every active consent it covers is withdrawn whatever its
-- collection time.
--
-- Rows: for every item, in item order, its refusal, or its withdrawals (or position alone) in (purpose, id) order.
CREATE FUNCTION app_record_withdrawals(
    p_tenant uuid, p_channels text[], p_blind_indexes bytea[], p_all boolean[], p_sources text[], p_actors text[],
    p_key_ids uuid[], p_suppression_hashes bytea[], p_purpose_items int[], p_purposes text[]
) RETURNS TABLE (item int, refusal text, change_position bigint, consent_id uuid, purpose text,
                 revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_count int := cardinality(p_blind_indexes);
    v_refusals text[];
    v_items int[];
    v_subjects uuid[];
    v_positions bigint[];
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF cardinality(p_purpose_items) <> cardinality(p_purposes) THEN
        RAISE EXCEPTION 'app_record_withdrawals: purpose arrays of different lengths';
    END IF;

    -- Unknown purposes (app_revoke's CL012), then anyone named by an earlier item that was not refused.
    SELECT array_agg(
               CASE WHEN cardinality(u.unknown) > 0 THEN 'CL012:' || array_to_string(u.unknown, ',')
                    WHEN EXISTS (
                        SELECT 1 FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS e(channel, blind_index, k)
                        WHERE e.k < i.k AND e.channel = i.channel AND e.blind_index = i.blind_index)
                        THEN 'retry'
               END ORDER BY i.k)
    INTO v_refusals
    FROM unnest(p_channels, p_blind_indexes, p_all) WITH ORDINALITY AS i(channel, blind_index, every, k)
    CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(p.purpose ORDER BY p.m) FILTER (
                   WHERE NOT EXISTS (SELECT 1 FROM purposes c WHERE c.key = p.purpose)), '{}') AS unknown
        FROM unnest(p_purpose_items, p_purposes) WITH ORDINALITY AS p(item, purpose, m)
        WHERE p.item = i.k AND NOT i.every
    ) u;
    -- A retry after a refused item of the same person would be answered differently alone; only a person's first
    -- unrefused item is written here.
    FOR k IN 1 .. v_count LOOP
        IF v_refusals[k] = 'retry' AND NOT EXISTS (
            SELECT 1 FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS e(channel, blind_index, j)
            WHERE e.j < k AND e.channel = p_channels[k] AND e.blind_index = p_blind_indexes[k]
              AND v_refusals[e.j] IS NULL)
        THEN
            v_refusals[k] := NULL;
        END IF;
    END LOOP;

    -- The items written, with their subjects (none for someone not held).
    SELECT coalesce(array_agg(i.k::int ORDER BY i.k), '{}'), coalesce(array_agg(s.id ORDER BY i.k), '{}')
    INTO v_items, v_subjects
    FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS i(channel, blind_index, k)
    LEFT JOIN subjects s ON s.channel = i.channel AND s.blind_index = i.blind_index AND s.erased_at IS NULL
    WHERE v_refusals[i.k] IS NULL;

    -- Someone not held who withdraws everything objects to being messaged (app_revoke). A person is written by one
    -- item here at most (a person named again is retried), and the hash names the channel as the blind index
    -- does, so each hash comes once.
    WITH wanted AS (
        SELECT w.item, h.hash, c.channel, c.actor
        FROM unnest(v_items, v_subjects) AS w(item, subject_id)
        JOIN unnest(p_suppression_hashes) WITH ORDINALITY AS h(hash, k) ON h.k = w.item
        JOIN unnest(p_channels, p_all, p_actors) WITH ORDINALITY AS c(channel, every, actor, k) ON c.k = w.item
        WHERE w.subject_id IS NULL AND c.every AND octet_length(h.hash) > 0
    ), added AS (
        INSERT INTO suppressions (tenant_id, keyed_hash, reason)
        SELECT p_tenant, hash, 'objected' FROM wanted
        ON CONFLICT (tenant_id, keyed_hash) DO NOTHING
        RETURNING keyed_hash
    )
    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    SELECT p_tenant, 'suppression.added', w.actor, NULL, jsonb_build_object('channel', w.channel, 'reason', 'objected')
    FROM wanted w JOIN added ON added.keyed_hash = w.hash
    ORDER BY w.item;

    -- A change position for every item written, held or not (app_revoke takes one either way).
    WITH positions AS (
        INSERT INTO consent_change_log (position, tenant_id, channel, blind_index)
        SELECT nextval('consent_changes'), p_tenant, i.channel, i.blind_index
        FROM unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS i(channel, blind_index, k)
        JOIN unnest(v_items) AS w(item) ON w.item = i.k
        ORDER BY i.k
        RETURNING position, channel, blind_index
    )
    SELECT array_agg(x.position ORDER BY w.item) INTO v_positions
    FROM unnest(v_items) AS w(item)
    JOIN unnest(p_channels, p_blind_indexes) WITH ORDINALITY AS i(channel, blind_index, k) ON i.k = w.item
    JOIN positions x ON x.channel = i.channel AND x.blind_index = i.blind_index;

    -- The stops, as app_stop keeps them: one for every purpose, or one per purpose named.
    INSERT INTO consent_stops (tenant_id, subject_id, purpose, category, stopped_at, source)
    SELECT p_tenant, w.subject_id, NULL, NULL, now(), c.source
    FROM unnest(v_items, v_subjects) AS w(item, subject_id)
    JOIN unnest(p_all, p_sources) WITH ORDINALITY AS c(every, source, k) ON c.k = w.item
    WHERE w.subject_id IS NOT NULL AND c.every
    UNION ALL
    SELECT p_tenant, w.subject_id, p.purpose, NULL, now(), c.source
    FROM unnest(v_items, v_subjects) AS w(item, subject_id)
    JOIN unnest(p_all, p_sources) WITH ORDINALITY AS c(every, source, k) ON c.k = w.item
    JOIN unnest(p_purpose_items, p_purposes) WITH ORDINALITY AS p(item, purpose, m) ON p.item = w.item
    WHERE w.subject_id IS NOT NULL AND NOT c.every;

    RETURN QUERY
    WITH targets AS (
        SELECT w.item, w.subject_id, c.channel, c.every, c.source, c.actor, c.key_id
        FROM unnest(v_items, v_subjects) AS w(item, subject_id)
        JOIN unnest(p_channels, p_all, p_sources, p_actors, p_key_ids)
             WITH ORDINALITY AS c(channel, every, source, actor, key_id, k) ON c.k = w.item
        WHERE w.subject_id IS NOT NULL
    ), withdrawn AS (
        UPDATE consents c SET status = 'withdrawn', revoked_at = now(), revoke_source = t.source,
                              revoked_by = t.key_id
        FROM targets t
        WHERE c.subject_id = t.subject_id AND c.status IN ('granted', 'pending')
          AND (t.every OR EXISTS (SELECT 1 FROM unnest(p_purpose_items, p_purposes) AS p(item, purpose)
                                  WHERE p.item = t.item AND p.purpose = c.purpose))
        RETURNING t.item, c.id, c.purpose, c.revoked_at, t.subject_id, t.channel, t.source, t.actor
    ), events AS (
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT p_tenant, 'consent.withdrawn', w.actor, w.subject_id,
               jsonb_build_object('consentId', w.id, 'purpose', w.purpose, 'channel', w.channel, 'source', w.source)
        FROM withdrawn w ORDER BY w.item, w.purpose COLLATE "C", w.id::text COLLATE "C"
    )
    SELECT o.item, o.refusal, o.change_position, o.consent_id, o.purpose, o.revoked_at
    FROM (
        SELECT k::int AS item, v_refusals[k] AS refusal, NULL::bigint AS change_position, NULL::uuid AS consent_id,
               NULL::text AS purpose, NULL::timestamptz AS revoked_at, ''::text AS sort_purpose, ''::text AS sort_id
        FROM generate_series(1, v_count) AS k WHERE v_refusals[k] IS NOT NULL
        UNION ALL
        SELECT w.item, NULL, x.position, w.id, w.purpose, w.revoked_at, w.purpose, w.id::text
        FROM withdrawn w JOIN unnest(v_items, v_positions) AS x(item, position) ON x.item = w.item
        UNION ALL
        SELECT x.item, NULL, x.position, NULL, NULL, NULL, '', ''
        FROM unnest(v_items, v_positions) AS x(item, position)
        WHERE NOT EXISTS (SELECT 1 FROM withdrawn w WHERE w.item = x.item)
    ) o
    ORDER BY o.item, o.sort_purpose COLLATE "C", o.sort_id COLLATE "C";
END
$$;
