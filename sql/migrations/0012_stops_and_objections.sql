-- A stop that nothing stale can undo (issue 20, docs/messaging-rules.md "Stops and objections").
--
-- Every way a person says stop (a withdrawal by API, console or their own page, a STOP reply, an opt-out phrase, the
-- platform's marketing stop or its "Stop promotions" button, an objection) leaves a row in consent_stops with the
-- stop's own time: the message's time for a reply, the request's time otherwise. For each person, channel and
-- purpose the latest event by its own time wins: an opt-in whose collection time is not after the latest stop that
-- covers its purpose is kept as evidence with status 'superseded' and grants nothing, whatever its method. A stop
-- never withdraws an opt-in collected after it (a stop the platform delivers hours late).
--
-- An objection (Art. 21) is a stop for a scope (every purpose of category marketing, or every purpose) and a
-- suppression entry with that scope and time, a keyed hash that survives erasure: afterwards an import for a purpose
-- in the scope is refused ('suppressed') whatever its date, while an opt-in the person gives after the objection
-- grants again.

CREATE TABLE consent_stops (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    subject_id  uuid NOT NULL REFERENCES subjects (id),
    -- One purpose; or, with purpose NULL, every purpose of a category; or, with both NULL, every purpose.
    purpose     text,
    category    text CHECK (category IN ('utility', 'marketing', 'authentication')),
    stopped_at  timestamptz NOT NULL,
    source      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CHECK (purpose IS NULL OR category IS NULL)
);
CREATE INDEX consent_stops_subject ON consent_stops (subject_id, stopped_at);
SELECT app_isolate_tenant_rows('consent_stops');

ALTER TABLE consents DROP CONSTRAINT consents_status_check;
ALTER TABLE consents ADD CONSTRAINT consents_status_check
    CHECK (status IN ('granted', 'pending', 'withdrawn', 'expired', 'superseded'));
ALTER TABLE consents DROP CONSTRAINT consents_revoke_source_check;
ALTER TABLE consents ADD CONSTRAINT consents_revoke_source_check
    CHECK (revoke_source IN ('api', 'stop_keyword', 'self_service', 'dpo', 'channel_preference', 'objection',
                             'opt_out_phrase', 'stop_button', 'opt_out_review'));
-- The purpose's category when the consent was given: what the person agreed to, shown in exports. A category can
-- no longer change once used (the trigger below), so older consents take today's.
ALTER TABLE consents ADD COLUMN category text CHECK (category IN ('utility', 'marketing', 'authentication'));

ALTER TABLE suppressions ADD COLUMN scope text NOT NULL DEFAULT 'all' CHECK (scope IN ('all', 'marketing'));
ALTER TABLE suppressions ADD COLUMN stopped_at timestamptz;

ALTER TABLE subject_requests DROP CONSTRAINT subject_requests_type_check;
ALTER TABLE subject_requests ADD CONSTRAINT subject_requests_type_check
    CHECK (type IN ('access', 'portability', 'erasure', 'objection'));

-- The business numbers the tenant's webhook accepts messages for (the payload's metadata.phone_number_id), and
-- the payloads of the tenant's own stop buttons (the platform's "Stop promotions" is known by its label).
ALTER TABLE tenant_settings ADD COLUMN whatsapp_phone_number_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE tenant_settings ADD COLUMN whatsapp_stop_payloads text[] NOT NULL DEFAULT '{}';

-- Messages that look like an opt-out in the person's own words: marketing is withdrawn at once, and a DPO decides
-- whether the person meant everything. The text stays in the interaction, sealed; erasure deletes both.
CREATE TABLE opt_out_reviews (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    subject_id     uuid NOT NULL REFERENCES subjects (id),
    interaction_id uuid NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('whatsapp', 'sms', 'email')),
    received_at    timestamptz NOT NULL,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    resolution     text CHECK (resolution IN ('withdraw_all', 'keep')),
    resolved_at    timestamptz,
    resolved_by    uuid,
    CHECK ((resolution IS NULL) = (resolved_at IS NULL))
);
CREATE INDEX opt_out_reviews_open ON opt_out_reviews (tenant_id, opened_at) WHERE resolution IS NULL;
CREATE INDEX opt_out_reviews_subject ON opt_out_reviews (subject_id);
SELECT app_isolate_tenant_rows('opt_out_reviews');

-- A purpose's category, the tenant's own before a built-in of the same key.
CREATE FUNCTION app_purpose_category(p_key text) RETURNS text
LANGUAGE sql STABLE
AS $$ SELECT p.category FROM purposes p WHERE p.key = p_key ORDER BY p.tenant_id NULLS LAST LIMIT 1 $$;

-- Backfill the category of consents given before this migration, tenant by tenant (row security is forced).
DO $$
DECLARE
    v_tenant uuid;
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    FOR v_tenant IN SELECT id FROM tenants LOOP
        PERFORM set_config('consentd.tenant_id', v_tenant::text, true);
        UPDATE consents c SET category = app_purpose_category(c.purpose) WHERE c.category IS NULL;
    END LOOP;
    PERFORM set_config('consentd.tenant_id', '', true);
    PERFORM set_config('consentd.operator', '', true);
END
$$;

-- A category says what sending under a purpose needs (consent for marketing, a window for a session message), and
-- what people agreed to: once a consent, a notice or a template names the purpose, it stays.
CREATE FUNCTION app_purpose_category_fixed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.category IS DISTINCT FROM OLD.category AND (
        EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = OLD.tenant_id AND c.purpose = OLD.key)
        OR EXISTS (SELECT 1 FROM notices n WHERE n.tenant_id = OLD.tenant_id AND OLD.key = ANY (n.purposes))
        OR EXISTS (SELECT 1 FROM message_templates t WHERE t.tenant_id = OLD.tenant_id AND t.purpose = OLD.key))
    THEN
        RAISE EXCEPTION USING ERRCODE = 'CL020', MESSAGE = OLD.key;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER purposes_category_fixed BEFORE UPDATE OF category ON purposes
    FOR EACH ROW EXECUTE FUNCTION app_purpose_category_fixed();

-- Records a stop and withdraws what it covers: the purposes named (p_purposes), or every purpose of p_category, or
-- every purpose on the subject's channel (both NULL). An active consent whose newest evidence was collected after
-- p_stopped_at is not withdrawn: the person gave it after saying stop. One `consent.withdrawn` event per consent, in
-- (purpose, id) order. Runs inside the caller's statement or transaction.
CREATE FUNCTION app_stop(
    p_tenant uuid, p_subject_id uuid, p_channel text, p_purposes text[], p_category text, p_stopped_at timestamptz,
    p_source text, p_actor text, p_key_id uuid
) RETURNS TABLE (consent_id uuid, purpose text, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    IF p_purposes IS NULL THEN
        INSERT INTO consent_stops (tenant_id, subject_id, purpose, category, stopped_at, source)
        VALUES (p_tenant, p_subject_id, NULL, p_category, p_stopped_at, p_source);
    ELSE
        INSERT INTO consent_stops (tenant_id, subject_id, purpose, category, stopped_at, source)
        SELECT p_tenant, p_subject_id, k, NULL, p_stopped_at, p_source FROM unnest(p_purposes) AS k;
    END IF;
    RETURN QUERY
    WITH withdrawn AS (
        UPDATE consents c SET status = 'withdrawn', revoked_at = now(), revoke_source = p_source, revoked_by = p_key_id
        WHERE c.subject_id = p_subject_id AND c.status IN ('granted', 'pending')
          AND (p_purposes IS NULL OR c.purpose = ANY (p_purposes))
          AND (p_category IS NULL OR coalesce(c.category, app_purpose_category(c.purpose)) = p_category)
          AND (p_stopped_at >= now() OR NOT EXISTS (
              SELECT 1 FROM consent_evidence e JOIN collections col ON col.id = e.collection_id
              WHERE e.consent_id = c.id AND col.collected_at > p_stopped_at))
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

-- 0007's signature, kept for its callers (app_revoke, erasure): a stop at the time of the call.
CREATE OR REPLACE FUNCTION app_withdraw_consents(
    p_tenant uuid, p_subject_id uuid, p_channel text, p_purposes text[], p_source text, p_actor text, p_key_id uuid
) RETURNS TABLE (consent_id uuid, purpose text, revoked_at timestamptz)
LANGUAGE sql VOLATILE
AS $$
    SELECT * FROM app_stop(p_tenant, p_subject_id, p_channel, p_purposes, NULL, now(), p_source, p_actor, p_key_id)
$$;

-- `POST /v1/objections`, an objection request, the console: the person objects to being messaged for a scope
-- ('marketing' or 'all') on one channel. The suppression entry is kept (or widened, never narrowed; its first
-- reason stays) whether or not
-- the tenant knows the person; a known person's consents in the scope are withdrawn. Always one row: the change
-- position, then each withdrawn consent (none: one row with NULLs).
CREATE FUNCTION app_object(
    p_tenant uuid, p_channel text, p_blind_index bytea, p_suppression_hash bytea, p_scope text,
    p_stopped_at timestamptz, p_source text, p_actor text, p_key_id uuid, p_objection_id uuid, p_change_prefix text
) RETURNS TABLE (change_position bigint, consent_id uuid, purpose text, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_subject uuid;
    v_position bigint;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF p_scope NOT IN ('marketing', 'all') THEN
        RAISE EXCEPTION USING ERRCODE = 'CL021', MESSAGE = p_scope;
    END IF;
    INSERT INTO suppressions (tenant_id, keyed_hash, reason, scope, stopped_at)
    VALUES (p_tenant, p_suppression_hash, 'objected', p_scope, p_stopped_at)
    ON CONFLICT (tenant_id, keyed_hash) DO UPDATE
        SET scope = CASE WHEN suppressions.scope = 'all' OR excluded.scope = 'all' THEN 'all' ELSE 'marketing' END,
            stopped_at = greatest(suppressions.stopped_at, excluded.stopped_at);
    SELECT s.id INTO v_subject FROM subjects s
    WHERE s.channel = p_channel AND s.blind_index = p_blind_index AND s.erased_at IS NULL FOR KEY SHARE;
    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    VALUES (p_tenant, 'objection.recorded', p_actor, v_subject,
            jsonb_build_object('objectionId', p_objection_id, 'channel', p_channel, 'scope', p_scope,
                               'source', p_source, 'knownSubject', v_subject IS NOT NULL));
    v_position := app_change_position('', p_change_prefix);
    IF v_subject IS NULL THEN
        RETURN QUERY SELECT v_position, NULL::uuid, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    RETURN QUERY
    WITH w AS MATERIALIZED (
        SELECT * FROM app_stop(p_tenant, v_subject, p_channel, NULL,
                               CASE WHEN p_scope = 'marketing' THEN 'marketing' END, p_stopped_at, 'objection',
                               p_actor, p_key_id))
    SELECT v_position, w.consent_id, w.purpose, w.revoked_at FROM w
    UNION ALL
    SELECT v_position, NULL, NULL, NULL WHERE NOT EXISTS (SELECT 1 FROM w);
END
$$;

-- 0007's opt-in with evidence ordering and scoped suppression. Each purpose named is, in this order:
--   suppressed  an import for a purpose in the scope of the person's suppression entry: nothing is recorded for it;
--   superseded  collected at or before the latest stop covering it (the person's own, or their suppression entry's):
--               kept as a consent with status 'superseded' and its evidence, granting nothing. A collection time
--               ahead of the database's clock (the API allows five minutes of skew) counts as now: a clock running
--               fast cannot put an opt-in after a stop it arrived after;
--   recorded    as before (granted, pending, reconciled with what is active).
-- p_suppression_hash is given for every method now: an objection also supersedes a checkbox ticked before it. When
-- nothing would be recorded for a person the tenant does not hold (erased or never met), the opt-in is refused as
-- before (CL015) and no subject is made. Rows come back in the order of p_purposes; a suppressed purpose has no id.
CREATE OR REPLACE FUNCTION app_record_opt_in(
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
    v_scope text;
    v_suppressed_at timestamptz;
    v_suppressed text[];
    v_superseded text[];
    v_superseded_ids uuid[];
    v_purposes text[];
    v_ids uuid[];
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
            RETURN;
        END IF;
    ELSE
        INSERT INTO subjects (id, tenant_id, channel, blind_index, identifier_ciphertext)
        VALUES (p_subject_id, p_tenant, p_channel, p_blind_index, p_identifier)
        ON CONFLICT (tenant_id, channel, blind_index) DO NOTHING;
        IF NOT FOUND THEN
            RETURN;
        END IF;
        INSERT INTO subject_keys (subject_id, tenant_id, wrapped_key, master_key_id)
        VALUES (p_subject_id, p_tenant, p_wrapped_key, p_master_key_id);
    END IF;

    -- After the subject statement, which waits out a concurrent erasure or objection: this sees what it committed.
    IF p_suppression_hash IS NOT NULL THEN
        SELECT x.scope, coalesce(x.stopped_at, x.created_at) INTO v_scope, v_suppressed_at
        FROM suppressions x WHERE x.tenant_id = p_tenant AND x.keyed_hash = p_suppression_hash;
    END IF;
    SELECT coalesce(array_agg(w.purpose ORDER BY w.n) FILTER (WHERE w.verdict = 'suppressed'), '{}'),
           coalesce(array_agg(w.purpose ORDER BY w.n) FILTER (WHERE w.verdict = 'superseded'), '{}'),
           coalesce(array_agg(w.id ORDER BY w.n) FILTER (WHERE w.verdict = 'superseded'), '{}'),
           coalesce(array_agg(w.purpose ORDER BY w.n) FILTER (WHERE w.verdict = 'recorded'), '{}'),
           coalesce(array_agg(w.id ORDER BY w.n) FILTER (WHERE w.verdict = 'recorded'), '{}')
    INTO v_suppressed, v_superseded, v_superseded_ids, v_purposes, v_ids
    FROM (
        SELECT u.id, u.purpose, u.n,
               CASE WHEN sc.in_scope AND p_method = 'import' THEN 'suppressed'
                    WHEN least(p_collected_at, now())
                         <= greatest(st.stopped_at, CASE WHEN sc.in_scope THEN v_suppressed_at END)
                        THEN 'superseded'
                    ELSE 'recorded' END AS verdict
        FROM unnest(p_consent_ids, p_purposes) WITH ORDINALITY AS u(id, purpose, n)
        CROSS JOIN LATERAL (SELECT app_purpose_category(u.purpose) AS category) cat
        CROSS JOIN LATERAL (
            SELECT coalesce(v_scope = 'all' OR (v_scope = 'marketing' AND cat.category = 'marketing'), false) AS in_scope
        ) sc
        CROSS JOIN LATERAL (
            SELECT max(s.stopped_at) AS stopped_at FROM consent_stops s
            WHERE s.subject_id = p_subject_id
              AND (s.purpose = u.purpose OR (s.purpose IS NULL AND (s.category IS NULL OR s.category = cat.category)))
        ) st
    ) w;
    IF cardinality(v_purposes) = 0 AND cardinality(v_superseded) = 0 THEN
        IF p_identifier IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'CL015', MESSAGE = 'on the suppression list';
        END IF;
    ELSE
        INSERT INTO collections (id, tenant_id, subject_id, notice_id, method, collected_at, received_at, recorded_by,
                                 provenance_ciphertext)
        VALUES (p_collection_id, p_tenant, p_subject_id, p_notice_id, p_method, p_collected_at, now(), p_recorded_by,
                p_provenance);
    END IF;

    IF cardinality(v_superseded) > 0 THEN
        INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, category, notice_id, status, created_at)
        SELECT w.id, p_tenant, p_subject_id, p_channel, w.purpose, app_purpose_category(w.purpose), p_notice_id,
               'superseded', now()
        FROM unnest(v_superseded_ids, v_superseded) AS w(id, purpose);
    END IF;

    WITH inserted AS (
        INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, category, notice_id, status, created_at,
                              granted_at)
        SELECT w.id, p_tenant, p_subject_id, p_channel, w.purpose, app_purpose_category(w.purpose), p_notice_id,
               p_status, now(), CASE WHEN p_status = 'granted' THEN now() END
        FROM unnest(v_ids, v_purposes) AS w(id, purpose)
        ON CONFLICT (subject_id, purpose) WHERE status IN ('granted', 'pending') DO NOTHING
        RETURNING id
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_created FROM inserted;
    SELECT coalesce(array_agg(w.purpose ORDER BY w.n), '{}') INTO v_active
    FROM unnest(v_ids, v_purposes) WITH ORDINALITY AS w(id, purpose, n) WHERE NOT (w.id = ANY (v_created));

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
                INSERT INTO consents (id, tenant_id, subject_id, channel, purpose, category, notice_id, status,
                                      created_at, granted_at)
                SELECT gen_random_uuid(), p_tenant, p_subject_id, p_channel, k, app_purpose_category(k), p_notice_id,
                       p_status, now(), CASE WHEN p_status = 'granted' THEN now() END
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
    SELECT unnest(v_created || v_confirmed || v_unchanged || v_superseded_ids), p_collection_id, p_tenant;
    -- Expiries first, then what this opt-in created, then what it confirmed or found already in force, then what
    -- it could not grant; each group in the order of p_purposes.
    INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
    SELECT p_tenant, e.action, p_actor, p_subject_id, e.data
    FROM (
        SELECT 0 AS phase, x.n AS position, 'consent.expired' AS action,
               jsonb_build_object('consentId', x.id, 'purpose', x.purpose, 'channel', p_channel) AS data
        FROM unnest(v_expired_ids, v_expired_purposes) WITH ORDINALITY AS x(id, purpose, n)
        UNION ALL
        SELECT CASE WHEN c.id = ANY (v_created) THEN 1 WHEN c.id = ANY (v_confirmed) THEN 2
                    WHEN c.status = 'superseded' THEN 4 ELSE 3 END,
               array_position(p_purposes, c.purpose),
               CASE WHEN c.status = 'superseded' THEN 'consent.superseded'
                    WHEN c.id = ANY (v_confirmed) THEN 'consent.confirmed'
                    WHEN NOT (c.id = ANY (v_created)) THEN 'consent.reconfirmed'
                    WHEN c.status = 'pending' THEN 'consent.pending'
                    ELSE 'consent.granted' END,
               jsonb_build_object('consentId', c.id, 'purpose', c.purpose, 'channel', p_channel,
                                  'noticeId', p_notice_id, 'collectionId', p_collection_id, 'method', p_method)
        FROM consents c WHERE c.id = ANY (v_created || v_confirmed || v_unchanged || v_superseded_ids)
        UNION ALL
        SELECT 5, array_position(p_purposes, k), 'consent.suppressed',
               jsonb_build_object('purpose', k, 'channel', p_channel, 'noticeId', p_notice_id, 'method', p_method)
        FROM unnest(v_suppressed) AS k
    ) e
    ORDER BY e.phase, e.position;

    v_position := app_change_position(p_notify_channel, p_change_prefix);
    RETURN QUERY
        SELECT r.id, r.purpose, r.status, r.granted_at, v_position
        FROM (
            SELECT c.id, c.purpose, c.status, c.granted_at FROM consents c
            WHERE c.id = ANY (v_created || v_confirmed || v_unchanged || v_superseded_ids)
            UNION ALL
            SELECT NULL::uuid, k, 'suppressed', NULL::timestamptz FROM unnest(v_suppressed) AS k
        ) r
        ORDER BY array_position(p_purposes, r.purpose);
END
$$;

-- The check path's one query (0010's), with superseded consents left out like expired ones: they never held.
CREATE OR REPLACE FUNCTION app_consent_states(p_tenant uuid, p_channel text, p_purpose text, p_blind_indexes bytea[])
RETURNS TABLE (blind_index bytea, subject_id uuid, last_inbound_at timestamptz, entry_point_at timestamptz,
               marketing_stopped_at timestamptz, consent_id uuid, status text, granted_at timestamptz,
               revoked_at timestamptz, collected_at timestamptz, purpose_category text)
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_category text;
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    SELECT p.category INTO v_category FROM purposes p WHERE p.key = p_purpose;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown purpose' USING ERRCODE = 'CL001';
    END IF;
    RETURN QUERY
        SELECT NULL::bytea, NULL::uuid, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::uuid,
               NULL::text, NULL::timestamptz, NULL::timestamptz, NULL::timestamptz, v_category
        UNION ALL
        SELECT s.blind_index, s.id, s.last_inbound_at, s.entry_point_at, s.marketing_stopped_at, c.id, c.status,
               c.granted_at, c.revoked_at, c.collected_at, NULL::text
        FROM subjects s
        LEFT JOIN LATERAL (
            -- When the person last gave this consent (its newest evidence), which is what lifts a marketing stop:
            -- not when it was recorded, since an import records old opt-ins today. Read only for someone who
            -- stopped marketing, the one case that needs it (a batch of 10,000 pays for it otherwise).
            SELECT c.id, c.status, c.granted_at, c.revoked_at,
                   CASE WHEN s.marketing_stopped_at IS NOT NULL THEN
                       (SELECT max(col.collected_at) FROM consent_evidence e
                        JOIN collections col ON col.id = e.collection_id WHERE e.consent_id = c.id)
                   END AS collected_at
            FROM consents c
            WHERE c.subject_id = s.id AND c.purpose = p_purpose AND c.status NOT IN ('expired', 'superseded')
            ORDER BY (c.status <> 'withdrawn') DESC, c.created_at DESC
            LIMIT 1
        ) c ON true
        WHERE s.channel = p_channel AND s.blind_index = ANY (p_blind_indexes) AND s.erased_at IS NULL;
END
$$;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known CHECK (action IN (
    'tenant.created', 'key.created', 'key.revoked', 'purpose.created', 'purpose.updated', 'notice.created',
    'consent.granted', 'consent.pending', 'consent.confirmed', 'consent.reconfirmed', 'consent.expired',
    'consent.withdrawn', 'interaction.received', 'suppression.added', 'subject.erased', 'request.received',
    'request.completed', 'request.cancelled', 'retention.purged', 'settings.origins_changed',
    'settings.whatsapp_changed', 'console.signed_in', 'console.signed_out', 'preference.marketing_stopped',
    'template.created', 'template.status_changed', 'template.category_changed', 'template.quality_changed',
    'consent.superseded', 'consent.suppressed', 'objection.recorded', 'preference.marketing_resumed',
    'opt_out.review_opened', 'opt_out.review_resolved'
));
