-- Message templates (issue 19): registered per tenant, versioned by name and language like notices. The wording
-- (body, header, buttons) never changes once stored; the review status, the category and the quality rating are
-- the platform's, changed by an admin or by its webhooks, each change audited. Checks use the latest approved
-- version of a name and language.
CREATE TABLE message_templates (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    channel         text NOT NULL CHECK (channel = 'whatsapp'),
    name            text NOT NULL CHECK (name ~ '^[a-z0-9_]+$' AND length(name) <= 512),
    language        text NOT NULL CHECK (language ~ '^[a-z]{2,3}(_[A-Z]{2})?$'),
    version         integer NOT NULL CHECK (version > 0),
    category        text NOT NULL CHECK (category IN ('utility', 'marketing', 'authentication')),
    purpose         text NOT NULL,
    body            text NOT NULL,
    body_sha256     bytea NOT NULL CHECK (octet_length(body_sha256) = 32),
    header          jsonb,
    buttons         jsonb NOT NULL DEFAULT '[]',
    lint_findings   jsonb NOT NULL DEFAULT '[]',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected', 'paused', 'disabled')),
    status_reason   text,
    quality         text,
    -- When the platform said so (the webhook entry's `time`): a retried older event never overrides a newer one.
    platform_status_at   timestamptz,
    platform_category_at timestamptz,
    created_by      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name, language, version)
);
SELECT app_isolate_tenant_rows('message_templates');

-- The wording is evidence of what was sent: only the platform's fields may change.
CREATE FUNCTION app_template_wording_fixed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF (NEW.id, NEW.tenant_id, NEW.channel, NEW.name, NEW.language, NEW.version, NEW.purpose, NEW.body,
        NEW.body_sha256, NEW.header, NEW.buttons, NEW.lint_findings, NEW.created_by, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.channel, OLD.name, OLD.language, OLD.version, OLD.purpose, OLD.body,
        OLD.body_sha256, OLD.header, OLD.buttons, OLD.lint_findings, OLD.created_by, OLD.created_at)
    THEN
        RAISE EXCEPTION 'a template''s wording is immutable; post a new version' USING ERRCODE = 'CL020';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER message_templates_wording_fixed BEFORE UPDATE ON message_templates
    FOR EACH ROW EXECUTE FUNCTION app_template_wording_fixed();
CREATE TRIGGER message_templates_kept BEFORE DELETE ON message_templates
    FOR EACH ROW EXECUTE FUNCTION app_reject_change();

ALTER TABLE audit_events DROP CONSTRAINT audit_events_action_known;
ALTER TABLE audit_events ADD CONSTRAINT audit_events_action_known CHECK (action IN (
    'tenant.created', 'key.created', 'key.revoked', 'purpose.created', 'purpose.updated', 'notice.created',
    'consent.granted', 'consent.pending', 'consent.confirmed', 'consent.reconfirmed', 'consent.expired',
    'consent.withdrawn', 'interaction.received', 'suppression.added', 'subject.erased', 'request.received',
    'request.completed', 'request.cancelled', 'retention.purged', 'settings.origins_changed',
    'settings.whatsapp_changed', 'console.signed_in', 'console.signed_out', 'preference.marketing_stopped',
    'template.created', 'template.status_changed', 'template.category_changed', 'template.quality_changed'
));
