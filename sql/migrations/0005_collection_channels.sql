-- Collecting and withdrawing consent where people are: checkout consent sessions, per-tenant settings (allowed
-- origins, the WhatsApp app secret and verify token), double opt-in expiry, and WhatsApp message ids seen.

-- Two more per-tenant keys: one signs self-service links, one seals the tenant's settings secrets.
ALTER TABLE tenant_keys DROP CONSTRAINT tenant_keys_purpose_check;
ALTER TABLE tenant_keys ADD CONSTRAINT tenant_keys_purpose_check
    CHECK (purpose IN ('blind_index', 'suppression', 'self_service_link', 'settings'));

-- A double opt-in that is not confirmed in time expires: it is no consent, and a later opt-in starts afresh.
ALTER TABLE consents DROP CONSTRAINT consents_status_check;
ALTER TABLE consents ADD CONSTRAINT consents_status_check CHECK (status IN ('granted', 'pending', 'withdrawn', 'expired'));
ALTER TABLE consents ADD COLUMN expired_at timestamptz;
ALTER TABLE consents ADD CONSTRAINT consents_expired_when CHECK ((status = 'expired') = (expired_at IS NOT NULL));
CREATE INDEX consents_pending_age ON consents (tenant_id, created_at) WHERE status = 'pending';

-- A WhatsApp user's marketing preference ("stop" in the app) is a withdrawal by the platform on the person's behalf.
ALTER TABLE consents DROP CONSTRAINT consents_revoke_source_check;
ALTER TABLE consents ADD CONSTRAINT consents_revoke_source_check
    CHECK (revoke_source IN ('api', 'stop_keyword', 'self_service', 'dpo', 'channel_preference'));

-- Inbound messages from a platform webhook have no API key behind them.
ALTER TABLE interactions ALTER COLUMN recorded_by DROP NOT NULL;

-- One row per tenant, made by the first admin setting.
CREATE TABLE tenant_settings (
    tenant_id                      uuid PRIMARY KEY REFERENCES tenants (id),
    -- Origins ('https://shop.example', scheme://host[:port], lower case) whose pages may call the widget's routes.
    allowed_origins                text[] NOT NULL DEFAULT '{}',
    -- The Meta app secret, AES-GCM under the tenant's 'settings' key: webhook signatures are HMACs under it.
    whatsapp_app_secret_ciphertext bytea,
    -- SHA-256 of the verify token the platform echoes in its subscription handshake.
    whatsapp_verify_token_sha256   bytea CHECK (octet_length(whatsapp_verify_token_sha256) = 32),
    updated_at                     timestamptz NOT NULL DEFAULT now()
);
SELECT app_isolate_tenant_rows('tenant_settings');

-- A checkout's consent session: the shop's backend binds one subject and one notice to a single-use token. The
-- token is stored as its SHA-256 only; the page URL is sealed under the subject's data key, like provenance.
CREATE TABLE consent_sessions (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants (id),
    token_sha256          bytea NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    subject_id            uuid NOT NULL REFERENCES subjects (id),
    notice_id             uuid NOT NULL REFERENCES notices (id),
    page_url_ciphertext   bytea NOT NULL,
    created_by            uuid NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    decided_at            timestamptz,
    decision              text CHECK (decision IN ('accepted', 'declined')),
    collection_id         uuid REFERENCES collections (id),
    CHECK (expires_at > created_at),
    CHECK ((decided_at IS NULL) = (decision IS NULL))
);
CREATE INDEX consent_sessions_subject ON consent_sessions (subject_id);
CREATE INDEX consent_sessions_age ON consent_sessions (tenant_id, expires_at);
SELECT app_isolate_tenant_rows('consent_sessions');

-- WhatsApp message ids already recorded: the platform retries deliveries, and each message counts once. The id is
-- kept as a SHA-256; it names a message, not a person, but there is no need to keep it readable.
CREATE TABLE whatsapp_messages_seen (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    message_sha256   bytea NOT NULL CHECK (octet_length(message_sha256) = 32),
    interaction_id   uuid,
    received_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_sha256)
);
CREATE INDEX whatsapp_messages_seen_age ON whatsapp_messages_seen (tenant_id, received_at);
SELECT app_isolate_tenant_rows('whatsapp_messages_seen');

-- The check path ignores expired double opt-ins: they decide nothing, and an earlier withdrawal still shows.
CREATE OR REPLACE FUNCTION app_consent_states(p_tenant uuid, p_channel text, p_purpose text, p_blind_indexes bytea[])
RETURNS TABLE (blind_index bytea, subject_id uuid, last_inbound_at timestamptz,
               consent_id uuid, status text, granted_at timestamptz, revoked_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM set_config('consentd.tenant_id', p_tenant::text, true);
    IF NOT EXISTS (SELECT 1 FROM purposes p WHERE p.key = p_purpose) THEN
        RAISE EXCEPTION 'unknown purpose' USING ERRCODE = 'CL001';
    END IF;
    RETURN QUERY
        SELECT s.blind_index, s.id, s.last_inbound_at, c.id, c.status, c.granted_at, c.revoked_at
        FROM subjects s
        LEFT JOIN LATERAL (
            SELECT c.id, c.status, c.granted_at, c.revoked_at
            FROM consents c
            WHERE c.subject_id = s.id AND c.purpose = p_purpose AND c.status <> 'expired'
            ORDER BY (c.status <> 'withdrawn') DESC, c.created_at DESC
            LIMIT 1
        ) c ON true
        WHERE s.channel = p_channel AND s.blind_index = ANY (p_blind_indexes) AND s.erased_at IS NULL;
END
$$;
