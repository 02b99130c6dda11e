-- Change webhooks (issue 22): endpoints a tenant's admin registers, and an outbox of the changes to announce to
-- them. The outbox is filled by the trigger that already queues every audit event for the sequencer, so it is
-- written in the change's own transaction by every write path there is (API, STOP replies, self-service,
-- console, imports, merges): a change that commits is announced, one that rolls back is not, and no write path can
-- forget to announce. The deliverer (WebhookDeliverer) sends what is queued, outside any write transaction.

CREATE TABLE webhook_endpoints (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id),
    url                    text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
    description            text NOT NULL DEFAULT '',
    -- The event types it subscribes to (WebhookEventType).
    events                 text[] NOT NULL CHECK (cardinality(events) > 0),
    -- The signing secret, sealed under the tenant's settings key; `secret_version` names which seal (it is in the
    -- sealing context, so an old sealed secret cannot be put back in place of a new one).
    secret_sealed          bytea NOT NULL,
    secret_version         int NOT NULL DEFAULT 1,
    -- After a rotation the previous secret signs too (a second `v1,` signature) until this time, so that a
    -- receiver can switch without losing deliveries.
    previous_secret_sealed bytea,
    previous_secret_until  timestamptz,
    status                 text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    disabled_at            timestamptz,
    disabled_reason        text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'disabled') = (disabled_at IS NOT NULL)),
    CHECK ((previous_secret_sealed IS NULL) = (previous_secret_until IS NULL))
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);
SELECT app_isolate_tenant_rows('webhook_endpoints');
-- The deliverer reads every tenant's endpoints in operator scope.
CREATE POLICY webhook_endpoints_operator ON webhook_endpoints USING (app_operator_scope());

-- One announced change. `data` is the audit event's data (ids, purposes, channel, source: never personal data,
-- see 0002) with the subject reference; the body sent is {"type", "timestamp", "data"}.
CREATE TABLE webhook_events (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    type           text NOT NULL,
    subject_ref    uuid,
    occurred_at    timestamptz NOT NULL,
    data           jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
    -- The audit event it announces (an import batch's event announces one change per consent the batch made).
    audit_event_id bigint
);
SELECT app_isolate_tenant_rows('webhook_events');
CREATE POLICY webhook_events_operator ON webhook_events USING (app_operator_scope());
-- So that an import batch does not announce a consent its chunk already announced (see the trigger).
CREATE INDEX webhook_events_consent ON webhook_events ((data ->> 'consentId')) WHERE data ? 'consentId';

-- One event for one endpoint. Deliveries with the same ordering key (the person, else the event itself) go out one
-- at a time in id order: the next waits until the one before it is delivered.
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        uuid NOT NULL,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL REFERENCES webhook_events (id),
    ordering_key     uuid NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    -- Attempts begun; one is counted when it is claimed, so an attempt cut short by a crash still counts.
    attempts         int NOT NULL DEFAULT 0,
    -- When it is due; while an attempt is in flight, when that attempt's claim lapses (WebhookDeliverer.lease).
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    first_attempt_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    -- A manual redelivery names the delivery it repeats.
    redelivery_of    bigint REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    CHECK ((state = 'pending') = (completed_at IS NULL))
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (endpoint_id, ordering_key, id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
SELECT app_isolate_tenant_rows('webhook_deliveries');
CREATE POLICY webhook_deliveries_operator ON webhook_deliveries USING (app_operator_scope());

-- What each attempt got: a status code, or the error that stood in for one; and how long it took.
CREATE TABLE webhook_attempts (
    delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL,
    attempt     int NOT NULL,
    at          timestamptz NOT NULL,
    status_code int CHECK (status_code BETWEEN 100 AND 599),
    latency_ms  int NOT NULL CHECK (latency_ms >= 0),
    error       text CHECK (length(error) <= 300),
    CHECK (status_code IS NOT NULL OR error IS NOT NULL),
    PRIMARY KEY (delivery_id, attempt)
);
SELECT app_isolate_tenant_rows('webhook_attempts');
CREATE POLICY webhook_attempts_operator ON webhook_attempts USING (app_operator_scope());

-- The webhook event type an audit action announces, or NULL for one that announces nothing (WebhookEventType).
-- A confirmation of a double opt-in is the consent being granted.
CREATE FUNCTION app_webhook_type(p_action text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_action
        WHEN 'consent.granted' THEN 'consent.granted'
        WHEN 'consent.confirmed' THEN 'consent.granted'
        WHEN 'consent.withdrawn' THEN 'consent.withdrawn'
        WHEN 'consent.superseded' THEN 'consent.superseded'
        WHEN 'subject.erased' THEN 'subject.erased'
        WHEN 'objection.recorded' THEN 'objection.recorded'
        WHEN 'request.due_soon' THEN 'request.due_soon'
        WHEN 'template.status_changed' THEN 'template.status_changed'
    END
$$;

-- 0003's queue trigger, now also the outbox: each new audit event that some endpoint of its tenant subscribes to
-- becomes a webhook event with one delivery per such endpoint (disabled ones too: they are held, not lost). An
-- import batch's event announces each consent the batch created, read from its rows (the batch's consents were
-- created in this transaction, so their created_at is now()), once each: a person the tenant already held was
-- recorded by app_record_opt_in, whose own audit events were announced already, and two lines for one new person
-- name the same consents. A tenant without endpoints pays one index probe.
-- The endpoints are read FOR KEY SHARE: an endpoint deleted by a transaction that committed after this statement's
-- snapshot is waited for and skipped, rather than named by a delivery whose foreign key then fails the write.
CREATE OR REPLACE FUNCTION app_queue_audit_events() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO audit_unsequenced (event_id, tenant_id) SELECT id, tenant_id FROM added_events;
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.tenant_id IN (SELECT a.tenant_id FROM added_events a))
    THEN
        RETURN NULL;
    END IF;
    WITH targets AS MATERIALIZED (
        SELECT e.id, e.tenant_id, e.events FROM webhook_endpoints e
        WHERE e.tenant_id IN (SELECT a.tenant_id FROM added_events a)
        FOR KEY SHARE
    ), announced AS (
        SELECT a.id AS audit_id, 0::bigint AS part, a.tenant_id, app_webhook_type(a.action) AS type, a.subject_ref,
               a.at, a.data || CASE WHEN a.subject_ref IS NULL THEN '{}'::jsonb
                                    ELSE jsonb_build_object('subjectRef', a.subject_ref) END AS data
        FROM added_events a
        WHERE app_webhook_type(a.action) IS NOT NULL
        UNION ALL
        (SELECT DISTINCT ON (c.id) a.id, min(r.line) OVER (PARTITION BY c.id)::bigint * 1000
                   + dense_rank() OVER (PARTITION BY a.id, c.subject_id ORDER BY c.purpose), a.tenant_id,
               CASE WHEN c.status = 'superseded' THEN 'consent.superseded' ELSE 'consent.granted' END,
               r.subject_id, a.at,
               jsonb_build_object('consentId', c.id, 'purpose', c.purpose, 'channel', c.channel,
                                  'noticeId', c.notice_id, 'method', 'import', 'importId', a.data ->> 'importId',
                                  'subjectRef', r.subject_id)
        FROM added_events a
        JOIN import_rows r ON a.action = 'import.batch_recorded'
                          AND r.import_id = (a.data ->> 'importId')::uuid AND r.batch = (a.data ->> 'batch')::int
                          AND r.outcome IN ('granted', 'superseded') AND r.subject_id IS NOT NULL
        JOIN consents c ON c.subject_id = r.subject_id AND c.created_at = now()
                       AND c.status IN ('granted', 'superseded')
        WHERE NOT EXISTS (SELECT 1 FROM webhook_events w
                          WHERE w.data ? 'consentId' AND (w.data ->> 'consentId') = c.id::text
                            AND w.tenant_id = a.tenant_id)
        ORDER BY c.id, r.line)
    ), subscribed AS (
        SELECT gen_random_uuid() AS event_id, n.*
        FROM announced n
        WHERE EXISTS (SELECT 1 FROM targets e WHERE e.tenant_id = n.tenant_id AND n.type = ANY (e.events))
    ), events AS (
        INSERT INTO webhook_events (id, tenant_id, type, subject_ref, occurred_at, data, audit_event_id)
        SELECT s.event_id, s.tenant_id, s.type, s.subject_ref, s.at, s.data, s.audit_id FROM subscribed s
    )
    INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
    SELECT s.tenant_id, e.id, s.event_id, coalesce(s.subject_ref, s.event_id)
    FROM subscribed s JOIN targets e ON e.tenant_id = s.tenant_id AND s.type = ANY (e.events)
    ORDER BY s.audit_id, s.part, e.id;
    RETURN NULL;
END
$$;

-- The deliveries due now, claimed: for each endpoint that is active and each ordering key, the oldest pending
-- delivery, if it is due. Claiming counts the attempt and moves its due time past the attempt (p_lease_seconds),
-- so that another deliverer leaves it alone, and a deliverer that dies mid-attempt leaves it to be tried again
-- when the claim lapses. Runs in operator scope, across tenants.
CREATE FUNCTION app_claim_webhook_deliveries(p_limit int, p_lease_seconds int)
RETURNS TABLE (delivery_id bigint, tenant_id uuid, endpoint_id uuid, url text, secret_sealed bytea,
               secret_version int, previous_secret_sealed bytea, previous_secret_until timestamptz, event_id uuid,
               type text, occurred_at timestamptz, data jsonb, attempt int, first_attempt_at timestamptz)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    RETURN QUERY
    WITH heads AS (
        SELECT DISTINCT ON (d.endpoint_id, d.ordering_key) d.id, d.endpoint_id, d.next_attempt_at
        FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.status = 'active'
        WHERE d.state = 'pending'
        ORDER BY d.endpoint_id, d.ordering_key, d.id
    ), due AS (
        -- At most 16 per endpoint a round: a receiver that hangs until the attempt's timeout holds up the round it
        -- is in for one timeout, and claims no more than that share of it.
        SELECT r.id FROM (
            SELECT h.id, h.next_attempt_at,
                   row_number() OVER (PARTITION BY h.endpoint_id ORDER BY h.next_attempt_at, h.id) AS n
            FROM heads h WHERE h.next_attempt_at <= now()
        ) r
        WHERE r.n <= 16
        ORDER BY r.next_attempt_at, r.id LIMIT p_limit
    ), claimed AS (
        UPDATE webhook_deliveries d
        SET attempts = d.attempts + 1, first_attempt_at = coalesce(d.first_attempt_at, now()),
            next_attempt_at = now() + make_interval(secs => p_lease_seconds)
        FROM due
        WHERE d.id = due.id AND d.state = 'pending' AND d.next_attempt_at <= now()
        RETURNING d.id, d.tenant_id, d.endpoint_id, d.event_id, d.attempts, d.first_attempt_at
    )
    SELECT c.id, c.tenant_id, c.endpoint_id, e.url, e.secret_sealed, e.secret_version,
           CASE WHEN e.previous_secret_until > now() THEN e.previous_secret_sealed END,
           CASE WHEN e.previous_secret_until > now() THEN e.previous_secret_until END,
           c.event_id, v.type, v.occurred_at, v.data, c.attempts, c.first_attempt_at
    FROM claimed c
    JOIN webhook_endpoints e ON e.id = c.endpoint_id
    JOIN webhook_events v ON v.id = c.event_id
    ORDER BY c.id;
END
$$;

-- What the claimed attempts got (a status code of 0 is none, an empty error is none). p_outcomes: 'delivered', 'retry' (at p_next_attempt_ats) or 'failed' (retried
-- for long enough: the delivery is given up and its endpoint disabled, with an audit event the DPO sees in the
-- console). An attempt whose claim was overtaken (the delivery was claimed again after its lease lapsed) is
-- recorded, but changes nothing. Runs in operator scope.
CREATE FUNCTION app_record_webhook_attempts(
    p_delivery_ids bigint[], p_attempts int[], p_ats timestamptz[], p_status_codes int[], p_latencies int[],
    p_errors text[], p_outcomes text[], p_next_attempt_ats timestamptz[], p_actor text
) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    INSERT INTO webhook_attempts (delivery_id, tenant_id, attempt, at, status_code, latency_ms, error)
    SELECT r.delivery_id, d.tenant_id, r.attempt, r.at, nullif(r.status_code, 0), r.latency, nullif(left(r.error, 300), '')
    FROM unnest(p_delivery_ids, p_attempts, p_ats, p_status_codes, p_latencies, p_errors)
         AS r(delivery_id, attempt, at, status_code, latency, error)
    JOIN webhook_deliveries d ON d.id = r.delivery_id
    ON CONFLICT (delivery_id, attempt) DO NOTHING;
    WITH settled AS (
        UPDATE webhook_deliveries d
        SET state = CASE r.outcome WHEN 'retry' THEN 'pending' ELSE r.outcome END,
            completed_at = CASE WHEN r.outcome = 'retry' THEN NULL ELSE clock_timestamp() END,
            next_attempt_at = CASE WHEN r.outcome = 'retry' THEN r.next_attempt_at ELSE d.next_attempt_at END
        FROM unnest(p_delivery_ids, p_attempts, p_outcomes, p_next_attempt_ats)
             AS r(delivery_id, attempt, outcome, next_attempt_at)
        WHERE d.id = r.delivery_id AND d.attempts = r.attempt AND d.state = 'pending'
        RETURNING d.endpoint_id, d.state, d.attempts
    ), disabled AS (
        UPDATE webhook_endpoints e
        SET status = 'disabled', disabled_at = clock_timestamp(),
            disabled_reason = format('a delivery failed on every attempt (%s) for over 24 hours', s.attempts)
        FROM (SELECT endpoint_id, max(attempts) AS attempts FROM settled WHERE state = 'failed'
              GROUP BY endpoint_id) s
        WHERE e.id = s.endpoint_id AND e.status = 'active'
        RETURNING e.id, e.tenant_id, s.attempts
    )
    INSERT INTO audit_events (tenant_id, action, actor, data)
    SELECT d.tenant_id, 'webhook.endpoint_disabled', p_actor,
           jsonb_build_object('endpointId', d.id, 'attempts', d.attempts)
    FROM disabled d ORDER BY d.id;
END
$$;

-- A pending request whose deadline is near is announced once (request.due_soon). Operator scope; run by the
-- retention job. Answers how many were announced.
ALTER TABLE subject_requests ADD COLUMN due_soon_announced_at timestamptz;
CREATE POLICY subject_requests_operator ON subject_requests USING (app_operator_scope());

CREATE FUNCTION app_announce_requests_due_soon(p_within_days int, p_actor text) RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
DECLARE
    v_count int;
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    WITH due AS (
        UPDATE subject_requests r SET due_soon_announced_at = now()
        WHERE r.status = 'pending' AND r.due_soon_announced_at IS NULL
          AND r.due_at <= now() + make_interval(days => p_within_days)
        RETURNING r.id, r.tenant_id, r.subject_id, r.type, r.due_at
    ), events AS (
        INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
        SELECT d.tenant_id, 'request.due_soon', p_actor, d.subject_id,
               jsonb_build_object('requestId', d.id, 'type', d.type,
                                  'dueAt', to_char(d.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
        FROM due d ORDER BY d.tenant_id, d.due_at, d.id
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM events;
    RETURN v_count;
END
$$;

SELECT app_add_audit_action('webhook.endpoint_created');
SELECT app_add_audit_action('webhook.endpoint_deleted');
SELECT app_add_audit_action('webhook.endpoint_enabled');
SELECT app_add_audit_action('webhook.endpoint_disabled');
SELECT app_add_audit_action('webhook.secret_rotated');
SELECT app_add_audit_action('webhook.test_requested');
SELECT app_add_audit_action('webhook.redelivery_requested');
SELECT app_add_audit_action('request.due_soon');

-- Deliveries delivered more than p_days ago are deleted with their attempts, and then the events no delivery names:
-- the outbox is a queue and a recent history, not a second audit log (the audit log keeps the changes themselves).
-- A failed delivery stays until it is sent again: it is a change its endpoint never received.
-- Operator scope; run by the retention job. Answers how many deliveries went.
CREATE FUNCTION app_prune_webhook_deliveries(p_days int) RETURNS int
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_count int;
BEGIN
    PERFORM set_config('consentd.operator', 'on', true);
    -- A redelivery's link to what it repeats does not keep the older one.
    WITH gone AS (
        DELETE FROM webhook_deliveries d
        WHERE d.state = 'delivered' AND d.completed_at < now() - make_interval(days => p_days)
        RETURNING d.event_id
    )
    SELECT count(*) INTO v_count FROM gone;
    DELETE FROM webhook_events v
    WHERE v.occurred_at < now() - make_interval(days => p_days)
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = v.id);
    RETURN v_count;
END
$$;
