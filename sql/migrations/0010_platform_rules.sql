-- What a check needs beyond consent to answer by today's platform rules (issue 19, docs/messaging-rules.md):
-- when the person last came from an ad (the free entry-point window) and last stopped marketing in WhatsApp itself
-- (error 131050 until a new marketing opt-in). Both are cleared by an erasure with the rest of the subject's row.
ALTER TABLE subjects ADD COLUMN entry_point_at timestamptz;
ALTER TABLE subjects ADD COLUMN marketing_stopped_at timestamptz;

-- A change to a tenant's catalogue (a purpose's category; later its templates) is a change-log row without a
-- subject: every instance drops what it cached of that tenant's catalogue.
ALTER TABLE consent_change_log ALTER COLUMN blind_index DROP NOT NULL;
ALTER TABLE consent_change_log ADD CONSTRAINT consent_change_log_subject_or_catalogue
    CHECK ((channel = 'catalogue') = (blind_index IS NULL));

CREATE FUNCTION app_catalogue_change(p_tenant uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_position bigint := nextval('consent_changes');
BEGIN
    INSERT INTO consent_change_log (position, tenant_id, channel, blind_index)
    VALUES (v_position, p_tenant, 'catalogue', NULL);
    RETURN v_position;
END
$$;

ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known CHECK (action IN (
    'tenant.created', 'key.created', 'key.revoked', 'purpose.created', 'purpose.updated', 'notice.created',
    'consent.granted', 'consent.pending', 'consent.confirmed', 'consent.reconfirmed', 'consent.expired',
    'consent.withdrawn', 'interaction.received', 'suppression.added', 'subject.erased', 'request.received',
    'request.completed', 'request.cancelled', 'retention.purged', 'settings.origins_changed',
    'settings.whatsapp_changed', 'console.signed_in', 'console.signed_out', 'preference.marketing_stopped'
));

-- The check path's one query, now with the purpose's category first: one row with a NULL blind index that is
-- always there (so an unknown subject still gets its category), then a row per subject the tenant knows.
DROP FUNCTION app_consent_states(uuid, text, text, bytea[]);
CREATE FUNCTION app_consent_states(p_tenant uuid, p_channel text, p_purpose text, p_blind_indexes bytea[])
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
            WHERE c.subject_id = s.id AND c.purpose = p_purpose AND c.status <> 'expired'
            ORDER BY (c.status <> 'withdrawn') DESC, c.created_at DESC
            LIMIT 1
        ) c ON true
        WHERE s.channel = p_channel AND s.blind_index = ANY (p_blind_indexes) AND s.erased_at IS NULL;
END
$$;
