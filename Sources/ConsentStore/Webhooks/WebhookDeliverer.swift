import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// Sends the outbox (sql/migrations/0019): claims the deliveries that are due (per endpoint and person, only the
/// oldest pending one), sends them at once, and records what each got: delivered on a 2xx, else tried again on the
/// retry schedule, and given up after it (the endpoint is then disabled and the DPO told). A claim lapses after
/// `lease`, so a deliverer that dies mid-attempt leaves nothing stuck: the delivery is tried again, which is why
/// delivery is at least once and receivers deduplicate on `webhook-id`.
public struct WebhookDeliverer: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let transport: any WebhookTransport
    let policy: WebhookTargetPolicy
    let resolver: WebhookAddressResolver
    let schedule: WebhookRetrySchedule
    /// Deliveries claimed in one round.
    let batchSize: Int
    /// One attempt's bound, from connecting to the answer's status line.
    let attemptTimeout: Duration
    /// How long a claimed delivery is left alone: longer than an attempt and its recording.
    let lease: Duration
    /// Bounds each database step of a round (nil: none, for tests that drive rounds themselves).
    let databaseDeadline: Duration?

    public static let actor = "system:webhooks"
    /// An attempt's record when the deliverer stopped during it: the receiver may or may not have it.
    static let interrupted = "interrupted: the deliverer stopped during the attempt"

    public init(
        database: ConsentDatabase, transport: any WebhookTransport, policy: WebhookTargetPolicy,
        schedule: WebhookRetrySchedule = .standard, batchSize: Int = 32, attemptTimeout: Duration = .seconds(10),
        lease: Duration = .seconds(60), databaseDeadline: Duration? = nil
    ) {
        self.databaseDeadline = databaseDeadline
        self.client = database.client
        self.keyring = database.keyring
        self.transport = transport
        self.policy = policy
        self.resolver = WebhookAddressResolver()
        self.schedule = schedule
        self.batchSize = batchSize
        self.attemptTimeout = attemptTimeout
        self.lease = lease
    }

    /// Rounds until nothing more is due. Answers how many attempts were made.
    @discardableResult
    public func deliverDue(logger: Logger) async throws -> Int {
        var total = 0
        while !Task.isCancelled {
            let made = try await deliverRound(logger: logger)
            total += made
            // A round takes at most 16 per endpoint (the claim's fairness), so a backlog takes rounds back to back
            // until nothing is due; a failed attempt is not due again for seconds, so this does not spin.
            if made == 0 { break }
        }
        return total
    }

    /// One round: claim, send, record.
    func deliverRound(logger: Logger) async throws -> Int {
        let claimed = try await bounded { [self] in try await claim(logger: logger) }
        guard !claimed.isEmpty else { return 0 }
        let secrets = try await bounded { [self] in try await openSecrets(claimed, logger: logger) }
        let results = await withTaskGroup(of: AttemptResult.self) { group in
            for delivery in claimed {
                group.addTask { [self] in
                    await attempt(delivery, secrets: secrets[delivery.deliveryId] ?? [], logger: logger)
                }
            }
            var results: [AttemptResult] = []
            for await result in group { results.append(result) }
            return results
        }
        let sorted = results.sorted { $0.deliveryId < $1.deliveryId }
        // Recorded even when the round was cancelled (a shutdown): attempts cut short are then due again at once,
        // instead of waiting out their claims. An unstructured task is not cancelled with this one.
        // During a shutdown the record gets a short bound: a database that stopped answering must not hold it up.
        let limit = Task.isCancelled ? Duration.seconds(2) : databaseDeadline
        try await Task { [self] in try await bounded(limit) { try await record(sorted, logger: logger) } }.value
        return claimed.count
    }

    /// A database step under `databaseDeadline`: a database that stops answering fails the round (its claims
    /// lapse and are taken again), and a shutdown ends it at once.
    private func bounded<Result: Sendable>(
        _ limit: Duration? = nil, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        guard let deadline = limit ?? databaseDeadline else { return try await body() }
        return try await withDeadline(deadline, grace: .seconds(1), body)
    }

    struct ClaimedDelivery: Sendable {
        let deliveryId: Int64
        let tenantId: UUID
        let endpointId: UUID
        let url: String
        let secretSealed: [UInt8]
        let secretVersion: Int
        let previousSecretSealed: [UInt8]?
        let eventId: UUID
        let type: String
        let occurredAt: Date
        let data: String
        let attempt: Int
        let firstAttemptAt: Date
    }

    struct AttemptResult: Sendable {
        let deliveryId: Int64
        let endpointId: UUID
        let attempt: Int
        let at: Date
        let statusCode: Int?
        let latencyMilliseconds: Int
        let error: String?
        let outcome: Outcome

        enum Outcome: Sendable, Equatable {
            case delivered
            case retry(at: Date)
            case failed
        }
    }

    /// One statement, its own transaction: every instance runs this every second, so it costs one round trip.
    private func claim(logger: Logger) async throws -> [ClaimedDelivery] {
        try await client.withRequestConnection { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT delivery_id, tenant_id, endpoint_id, url, secret_sealed, secret_version,
                       previous_secret_sealed, event_id, type, occurred_at, data::text, attempt, first_attempt_at
                FROM app_claim_webhook_deliveries(\(batchSize)::int, \(Int(lease.components.seconds))::int)
                """, logger: logger)
            var claimed: [ClaimedDelivery] = []
            for try await row in rows.decode(
                (Int64, UUID, UUID, String, ByteBuffer, Int, ByteBuffer?, UUID, String, Date, String, Int, Date).self)
            {
                claimed.append(
                    ClaimedDelivery(
                        deliveryId: row.0, tenantId: row.1, endpointId: row.2, url: row.3,
                        secretSealed: Array(row.4.readableBytesView), secretVersion: row.5,
                        previousSecretSealed: row.6.map { Array($0.readableBytesView) }, eventId: row.7, type: row.8,
                        occurredAt: row.9, data: row.10, attempt: row.11, firstAttemptAt: row.12))
            }
            return claimed
        }
    }

    /// Each delivery's secrets, newest first, opened under its tenant's settings key (loaded once per tenant).
    private func openSecrets(_ claimed: [ClaimedDelivery], logger: Logger) async throws -> [Int64: [WebhookSecret]] {
        var keys: [UUID: SymmetricKeyBox] = [:]
        for tenantId in Set(claimed.map(\.tenantId)) {
            // Held in memory after the first round that needed it: a transaction only the first time.
            if let key = keyring.loadedKey(.settings, tenantId: tenantId) {
                keys[tenantId] = SymmetricKeyBox(key: key)
                continue
            }
            do {
                let key = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await keyring.tenantKey(.settings, tenantId: tenantId, on: connection, logger: logger)
                }
                keys[tenantId] = SymmetricKeyBox(key: key)
            } catch let unreadable as TenantKeyring.KeyUnreadable {
                // One tenant's key that does not open (a master key missing from the configuration) fails that
                // tenant's attempts, which say so, and holds up no other tenant.
                logger.error("webhooks: \(unreadable)", metadata: ["tenant": "\(tenantId.lowercased)"])
            }
        }
        var secrets: [Int64: [WebhookSecret]] = [:]
        for delivery in claimed {
            guard let key = keys[delivery.tenantId]?.key else { continue }
            var opened: [WebhookSecret] = []
            if let current = try? FieldCipher.open(
                delivery.secretSealed, key: key,
                context: WebhookEndpointStore.secretContext(delivery.endpointId, version: delivery.secretVersion))
            {
                opened.append(WebhookSecret(key: current))
            }
            if let sealed = delivery.previousSecretSealed,
                let previous = try? FieldCipher.open(
                    sealed, key: key,
                    context: WebhookEndpointStore.secretContext(
                        delivery.endpointId, version: delivery.secretVersion - 1))
            {
                opened.append(WebhookSecret(key: previous))
            }
            secrets[delivery.deliveryId] = opened
        }
        return secrets
    }

    private func attempt(_ delivery: ClaimedDelivery, secrets: [WebhookSecret], logger: Logger) async -> AttemptResult {
        let started = Date()
        let clock = ContinuousClock()
        let start = clock.now
        var statusCode: Int?
        var failure: String?
        do {
            guard !secrets.isEmpty else { throw AttemptFailure("the endpoint's secret does not open") }
            let target: WebhookTarget
            do { target = try WebhookTarget(parsing: delivery.url) } catch { throw AttemptFailure("refused: \(error)") }
            let timestamp = Int64(started.timeIntervalSince1970)
            let body = WebhookPayload.body(type: delivery.type, occurredAt: delivery.occurredAt, data: delivery.data)
            let id = delivery.eventId.lowercased
            let request = WebhookRequest(
                url: delivery.url,
                headers: [
                    ("content-type", "application/json"),
                    ("user-agent", "ConsentLedger-Webhooks/1"),
                    ("webhook-id", id),
                    ("webhook-timestamp", String(timestamp)),
                    (
                        "webhook-signature",
                        StandardWebhookSignature.header(id: id, timestamp: timestamp, body: body, secrets: secrets)
                    ),
                ],
                body: body)
            // The whole attempt, the name's resolution and the answer's body included, within the attempt's bound:
            // the HTTP client's own timeout ends at the answer's head, and a receiver that then sends its body a
            // byte at a time, or a slow resolver, would otherwise hold up the round and every delivery in it.
            statusCode = try await withDeadline(attemptTimeout, grace: .milliseconds(500)) {
                [resolver, policy, transport, attemptTimeout] in
                do {
                    // Checked again at every attempt: what a name resolves to can change after it was registered.
                    try await resolver.check(target, policy: policy)
                } catch let refusal as WebhookTargetRefusal {
                    throw AttemptFailure("refused: the URL \(refusal)")
                }
                return try await transport.post(request, timeout: attemptTimeout)
            }
        } catch let known as AttemptFailure {
            failure = known.reason
        } catch  where Task.isCancelled {
            failure = Self.interrupted
        } catch is DeadlineExceeded {
            failure = "timed out"
        } catch {
            failure = Self.describe(error)
        }
        let latency = Int((clock.now - start).milliseconds)
        let outcome: AttemptResult.Outcome
        if let statusCode, (200..<300).contains(statusCode) {
            outcome = .delivered
        } else if failure == Self.interrupted {
            outcome = .retry(at: Date())
        } else {
            switch schedule.afterFailure(
                attempt: delivery.attempt, firstAttemptAt: delivery.firstAttemptAt, now: Date(),
                unit: Double.random(in: 0..<1))
            {
            case .retry(let at): outcome = .retry(at: at)
            case .giveUp: outcome = .failed
            }
            logger.warning(
                "webhooks: a delivery attempt failed",
                metadata: [
                    "endpoint": "\(delivery.endpointId.lowercased)", "delivery": "\(delivery.deliveryId)",
                    "attempt": "\(delivery.attempt)", "status": "\(statusCode.map(String.init) ?? "none")",
                    "error": "\(failure ?? "")", "given_up": "\(outcome == .failed)",
                ])
        }
        return AttemptResult(
            deliveryId: delivery.deliveryId, endpointId: delivery.endpointId, attempt: delivery.attempt, at: started,
            statusCode: statusCode, latencyMilliseconds: max(latency, 0),
            error: statusCode == nil ? (failure ?? "no answer") : nil, outcome: outcome)
    }

    private func record(_ results: [AttemptResult], logger: Logger) async throws {
        let outcomes = results.map { result -> String in
            switch result.outcome {
            case .delivered: "delivered"
            case .retry: "retry"
            case .failed: "failed"
            }
        }
        // Arrays of optionals do not bind: no status code is 0, no error '', and a time not to retry at is
        // ignored (the function reads it for 'retry' only).
        let nextAttempts = results.map { result -> Date in
            if case .retry(let at) = result.outcome { return at }
            return result.at
        }
        try await client.withRequestConnection { connection in
            try await connection.closeSafeQuery(
                """
                SELECT app_record_webhook_attempts(
                    \(results.map(\.deliveryId)), \(results.map(\.attempt))::int[], \(results.map(\.at)),
                    \(results.map { $0.statusCode ?? 0 })::int[], \(results.map(\.latencyMilliseconds))::int[],
                    \(results.map { $0.error ?? "" }),
                    \(outcomes), \(nextAttempts), \(Self.actor))
                """, logger: logger)
        }
    }

    /// An error as an attempt's record shows it: what kind of failure, never a URL or a body.
    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.localizedCaseInsensitiveContains("timeout") || text.localizedCaseInsensitiveContains("deadline") {
            return "timed out"
        }
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        if text.localizedCaseInsensitiveContains("ssl") || text.localizedCaseInsensitiveContains("tls")
            || text.localizedCaseInsensitiveContains("certificate")
        {
            return "TLS handshake failed"
        }
        return String("no answer: \(String(reflecting: type(of: error)))".prefix(200))
    }
}

private struct AttemptFailure: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// A tenant key held while a round opens its deliveries' secrets.
private struct SymmetricKeyBox: Sendable {
    let key: SymmetricKey
}
