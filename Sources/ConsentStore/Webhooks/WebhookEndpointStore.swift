import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A tenant's webhook endpoints: registered, listed, rotated, enabled and removed by its admin; each change commits
/// with its audit event through `ConsentDatabase.commit`. Secrets are sealed under the tenant's settings key, in a
/// context that names the endpoint and the secret's version.
public struct WebhookEndpointStore: Sendable {
    let database: ConsentDatabase
    let policy: WebhookTargetPolicy
    let resolver: WebhookAddressResolver

    /// How many endpoints a tenant may have: each one multiplies every write's outbox rows.
    public static let endpointLimit = 20
    /// How long the secret before a rotation still signs beside the new one.
    public static let rotationOverlap: TimeInterval = 24 * 3600

    init(database: ConsentDatabase, policy: WebhookTargetPolicy, resolver: WebhookAddressResolver = .init()) {
        self.database = database
        self.policy = policy
        self.resolver = resolver
    }

    /// Registers an endpoint after checking where its URL leads (`WebhookTargetPolicy`); the secret is returned
    /// here and never again.
    public func create(
        tenantId: UUID, url: String, events: [String], description: String, actor: String, logger: Logger
    ) async throws -> CreatedWebhookEndpoint {
        let target: WebhookTarget
        do { target = try WebhookTarget(parsing: url) } catch { throw WebhookEndpointError.targetRefused(error) }
        let types = try Self.eventTypes(events)
        try await check(target)
        let id = UUID()
        let secret = WebhookSecret.generate()
        let work = UnitOfWork<CreatedWebhookEndpoint>.bookkeeping(tenantId) {
            [keyring = database.keyring] connection, logger in
            // Creations for one tenant take turns, so that two at once cannot both pass the count.
            try await connection.closeSafeQuery(
                "SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints ' || \(tenantId.lowercased)))",
                logger: logger)
            let count =
                try await connection.closeSafeQuery(
                    "SELECT count(*)::int FROM webhook_endpoints", logger: logger
                ).decode(Int.self).array().first ?? 0
            guard count < Self.endpointLimit else {
                throw WebhookEndpointError.tooManyEndpoints(limit: Self.endpointLimit)
            }
            let key = try await keyring.tenantKey(.settings, tenantId: tenantId, on: connection, logger: logger)
            let sealed = FieldCipher.seal(secret.key, key: key, context: Self.secretContext(id, version: 1))
            let rows = try await connection.closeSafeQuery(
                """
                INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, secret_sealed)
                VALUES (\(id), \(tenantId), \(target.url), \(description), \(types.map(\.rawValue)),
                        \(ByteBuffer(bytes: sealed)))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let endpoint = try await Self.endpoints(rows).first else { throw WebhookEndpointError.notFound }
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .webhookEndpointCreated, actor: actor,
                        data: [
                            "endpointId": .id(id), "host": .string(target.host),
                            "events": .strings(types.map(\.rawValue)),
                        ])
                ], tenantId: tenantId, on: connection, logger: logger)
            return CreatedWebhookEndpoint(endpoint: endpoint, secret: secret)
        }
        return try await database.commit(work, logger: logger)
    }

    public func list(tenantId: UUID, logger: Logger) async throws -> [WebhookEndpoint] {
        try await database.read(tenantId, logger: logger) { connection in
            try await Self.endpoints(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM webhook_endpoints ORDER BY created_at, id", logger: logger))
        }
    }

    public func endpoint(tenantId: UUID, id: UUID, logger: Logger) async throws -> WebhookEndpoint {
        let found = try await database.read(tenantId, logger: logger) { connection in
            try await Self.endpoints(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM webhook_endpoints WHERE id = \(id)", logger: logger))
        }
        guard let endpoint = found.first else { throw WebhookEndpointError.notFound }
        return endpoint
    }

    /// Removes the endpoint and every delivery queued for it.
    public func delete(tenantId: UUID, id: UUID, actor: String, logger: Logger) async throws {
        let work = UnitOfWork<Bool>.bookkeeping(tenantId) { connection, logger in
            let deleted =
                try await connection.closeSafeQuery(
                    "DELETE FROM webhook_endpoints WHERE id = \(id) RETURNING id", logger: logger
                ).collect().isEmpty == false
            if deleted {
                try await AuditTrail.append(
                    [AuditEvent(action: .webhookEndpointDeleted, actor: actor, data: ["endpointId": .id(id)])],
                    tenantId: tenantId, on: connection, logger: logger)
            }
            return deleted
        }
        guard try await database.commit(work, logger: logger) else { throw WebhookEndpointError.notFound }
    }

    /// A new secret; the one it replaces keeps signing beside it for `rotationOverlap` (two `v1,` signatures), so
    /// a receiver can change over without losing a delivery. A second rotation within that time ends the oldest.
    public func rotateSecret(tenantId: UUID, id: UUID, actor: String, logger: Logger) async throws
        -> RotatedWebhookSecret
    {
        let secret = WebhookSecret.generate()
        let work = UnitOfWork<RotatedWebhookSecret>.bookkeeping(tenantId) {
            [keyring = database.keyring] connection, logger in
            let current = try await connection.closeSafeQuery(
                "SELECT secret_version FROM webhook_endpoints WHERE id = \(id) FOR UPDATE", logger: logger
            ).decode(Int.self).array()
            guard let version = current.first else { throw WebhookEndpointError.notFound }
            let key = try await keyring.tenantKey(.settings, tenantId: tenantId, on: connection, logger: logger)
            let sealed = FieldCipher.seal(secret.key, key: key, context: Self.secretContext(id, version: version + 1))
            // The previous secret keeps its seal, whose context names the version before the new one.
            let rows = try await connection.closeSafeQuery(
                """
                UPDATE webhook_endpoints SET
                    previous_secret_sealed = secret_sealed,
                    previous_secret_until = now() + make_interval(secs => \(Self.rotationOverlap)),
                    secret_sealed = \(ByteBuffer(bytes: sealed)), secret_version = secret_version + 1
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let endpoint = try await Self.endpoints(rows).first else { throw WebhookEndpointError.notFound }
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .webhookSecretRotated, actor: actor,
                        data: ["endpointId": .id(id), "version": .int(Int64(version + 1))])
                ], tenantId: tenantId, on: connection, logger: logger)
            return RotatedWebhookSecret(endpoint: endpoint, secret: secret)
        }
        return try await database.commit(work, logger: logger)
    }

    /// Resumes a disabled endpoint: what was held is due at once, oldest first per person as always.
    public func enable(tenantId: UUID, id: UUID, actor: String, logger: Logger) async throws -> WebhookEndpoint {
        let endpoint = try await self.endpoint(tenantId: tenantId, id: id, logger: logger)
        let target: WebhookTarget
        do { target = try WebhookTarget(parsing: endpoint.url) } catch {
            throw WebhookEndpointError.targetRefused(error)
        }
        try await check(target)
        let work = UnitOfWork<WebhookEndpoint?>.bookkeeping(tenantId) { connection, logger in
            let rows = try await connection.closeSafeQuery(
                """
                UPDATE webhook_endpoints SET status = 'active', disabled_at = NULL, disabled_reason = NULL
                WHERE id = \(id) AND status = 'disabled'
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            guard let enabled = try await Self.endpoints(rows).first else { return nil }
            // Held deliveries are due at once, and their give-up clock starts again: one failure in the burst after
            // a long outage must not give a delivery up at its next failure.
            try await connection.closeSafeQuery(
                """
                UPDATE webhook_deliveries SET next_attempt_at = now(), first_attempt_at = NULL
                WHERE endpoint_id = \(id) AND state = 'pending'
                """, logger: logger)
            try await AuditTrail.append(
                [AuditEvent(action: .webhookEndpointEnabled, actor: actor, data: ["endpointId": .id(id)])],
                tenantId: tenantId, on: connection, logger: logger)
            return enabled
        }
        return try await database.commit(work, logger: logger) ?? endpoint
    }

    /// Queues a `webhook.test` event for this endpoint alone; the deliverer sends it like any other.
    public func sendTest(tenantId: UUID, id: UUID, actor: String, logger: Logger) async throws
        -> QueuedWebhookDelivery
    {
        let eventId = UUID()
        let work = UnitOfWork<QueuedWebhookDelivery?>.bookkeeping(tenantId) {
            connection, logger in
            let rows = try await connection.closeSafeQuery(
                """
                WITH endpoint AS (SELECT id FROM webhook_endpoints WHERE id = \(id)),
                event AS (
                    INSERT INTO webhook_events (id, tenant_id, type, occurred_at, data)
                    SELECT \(eventId), \(tenantId), \(WebhookEventType.test.rawValue), now(),
                           jsonb_build_object('endpointId', e.id)
                    FROM endpoint e
                    RETURNING id
                )
                INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
                SELECT \(tenantId), \(id), v.id, v.id FROM event v
                RETURNING id
                """, logger: logger)
            guard let deliveryId = try await rows.decode(Int64.self).array().first else { return nil }
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .webhookTestRequested, actor: actor,
                        data: ["endpointId": .id(id), "deliveryId": .int(deliveryId)])
                ], tenantId: tenantId, on: connection, logger: logger)
            return QueuedWebhookDelivery(deliveryId: deliveryId, eventId: eventId)
        }
        guard let queued = try await database.commit(work, logger: logger) else { throw WebhookEndpointError.notFound }
        return queued
    }

    /// Queues the same event again for the same endpoint, as a new delivery (same `webhook-id`: a receiver that
    /// kept it recognises the repeat). It goes behind whatever is pending for the same person.
    public func redeliver(tenantId: UUID, endpointId: UUID, deliveryId: Int64, actor: String, logger: Logger)
        async throws -> QueuedWebhookDelivery
    {
        let work = UnitOfWork<QueuedWebhookDelivery?>.bookkeeping(tenantId) {
            connection, logger in
            let rows = try await connection.closeSafeQuery(
                """
                INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key, redelivery_of)
                SELECT d.tenant_id, d.endpoint_id, d.event_id, d.ordering_key, d.id
                FROM webhook_deliveries d WHERE d.id = \(deliveryId) AND d.endpoint_id = \(endpointId)
                RETURNING id, event_id
                """, logger: logger)
            guard let (newId, eventId) = try await rows.decode((Int64, UUID).self).array().first else { return nil }
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .webhookRedeliveryRequested, actor: actor,
                        data: [
                            "endpointId": .id(endpointId), "deliveryId": .int(newId), "repeats": .int(deliveryId),
                        ])
                ], tenantId: tenantId, on: connection, logger: logger)
            return QueuedWebhookDelivery(deliveryId: newId, eventId: eventId)
        }
        guard let queued = try await database.commit(work, logger: logger) else {
            throw WebhookEndpointError.deliveryNotFound
        }
        return queued
    }

    /// The endpoint's deliveries, newest first, with their attempts; `before` pages back by delivery id.
    public func deliveries(tenantId: UUID, endpointId: UUID, limit: Int, before: Int64?, logger: Logger)
        async throws -> [WebhookDelivery]
    {
        _ = try await endpoint(tenantId: tenantId, id: endpointId, logger: logger)
        return try await database.read(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT d.id, d.event_id, v.type, d.state, d.created_at,
                       CASE WHEN d.state = 'pending' THEN d.next_attempt_at END, d.completed_at, d.redelivery_of,
                       coalesce(array_agg(a.attempt::bigint ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), '{}'),
                       coalesce(array_agg(a.at ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), '{}'),
                       coalesce(array_agg(coalesce(a.status_code, 0)::bigint ORDER BY a.attempt)
                                FILTER (WHERE a.attempt IS NOT NULL), '{}'),
                       coalesce(array_agg(a.latency_ms::bigint ORDER BY a.attempt) FILTER (WHERE a.attempt IS NOT NULL), '{}'),
                       coalesce(array_agg(coalesce(a.error, '') ORDER BY a.attempt)
                                FILTER (WHERE a.attempt IS NOT NULL), '{}')
                FROM webhook_deliveries d
                JOIN webhook_events v ON v.id = d.event_id
                LEFT JOIN webhook_attempts a ON a.delivery_id = d.id
                WHERE d.endpoint_id = \(endpointId) AND (\(before)::bigint IS NULL OR d.id < \(before))
                GROUP BY d.id, v.type
                ORDER BY d.id DESC
                LIMIT \(limit)::int
                """, logger: logger)
            var deliveries: [WebhookDelivery] = []
            for try await row in rows.decode(
                (
                    Int64, UUID, String, String, Date, Date?, Date?, Int64?, [Int], [Date], [Int], [Int], [String]
                ).self)
            {
                let attempts = (0..<row.8.count).map { index in
                    WebhookAttempt(
                        attempt: row.8[index], at: row.9[index], statusCode: row.10[index] == 0 ? nil : row.10[index],
                        latencyMilliseconds: row.11[index], error: row.12[index].isEmpty ? nil : row.12[index])
                }
                deliveries.append(
                    WebhookDelivery(
                        id: row.0, eventId: row.1, type: row.2,
                        state: WebhookDelivery.State(rawValue: row.3) ?? .pending,
                        createdAt: row.4, nextAttemptAt: row.5, completedAt: row.6, redeliveryOf: row.7,
                        attempts: attempts))
            }
            return deliveries
        }
    }

    private func check(_ target: WebhookTarget) async throws {
        do {
            try await resolver.check(target, policy: policy)
        } catch let refusal as WebhookTargetRefusal {
            throw WebhookEndpointError.targetRefused(refusal)
        }
    }

    static func eventTypes(_ names: [String]) throws -> [WebhookEventType] {
        var types: [WebhookEventType] = []
        var unknown: [String] = []
        for name in names {
            if let type = WebhookEventType(rawValue: name), type != .test {
                if !types.contains(type) { types.append(type) }
            } else {
                unknown.append(name)
            }
        }
        guard unknown.isEmpty else { throw WebhookEndpointError.unknownEvents(unknown) }
        guard !types.isEmpty else { throw WebhookEndpointError.unknownEvents([]) }
        return types.sorted()
    }

    static func secretContext(_ endpointId: UUID, version: Int) -> String {
        "webhook-secret:\(endpointId.lowercased):\(version)"
    }

    static let columns =
        "id, url, description, events, status, disabled_at, disabled_reason, created_at, previous_secret_until"

    static func endpoints(_ rows: StoreRows) async throws -> [WebhookEndpoint] {
        var endpoints: [WebhookEndpoint] = []
        for try await row in rows.decode((UUID, String, String, [String], String, Date?, String?, Date, Date?).self) {
            endpoints.append(
                WebhookEndpoint(
                    id: row.0, url: row.1, description: row.2, events: row.3.compactMap(WebhookEventType.init),
                    status: WebhookEndpoint.Status(rawValue: row.4) ?? .disabled, disabledAt: row.5,
                    disabledReason: row.6, createdAt: row.7,
                    previousSecretValidUntil: row.8.flatMap { $0 > Date() ? $0 : nil }))
        }
        return endpoints
    }
}

extension ConsentDatabase {
    /// Change webhooks' endpoints, whose URLs are held to `policy`.
    public func webhookEndpoints(policy: WebhookTargetPolicy) -> WebhookEndpointStore {
        WebhookEndpointStore(database: self, policy: policy)
    }
}
