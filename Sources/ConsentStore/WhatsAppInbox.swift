import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// What one webhook delivery did, for the response and the logs (counts only).
public struct WhatsAppDeliveryOutcome: Sendable {
    public var messagesRecorded = 0
    /// Message ids seen before: the platform retried.
    public var duplicates = 0
    public var withdrawals = 0
    public var confirmations = 0
    public var preferencesNoted = 0
    /// Template status, category and quality changes applied.
    public var templateChanges = 0
    /// The latest change this delivery made, as a consistency token: a check on another instance that carries it
    /// sees every change of the delivery.
    public var token: ConsistencyToken?

    mutating func changed(_ position: Int64) {
        token = ConsistencyToken(position: max(position, token?.position ?? 0))
    }
    /// Events about numbers that are not valid subjects (never expected from Meta): skipped, not fatal.
    public var skipped = 0

    public init() {}
}

/// Records what Meta's WhatsApp webhook reports, each event in its own transaction: inbound messages as
/// interactions (once per message id, however often the platform retries), stop keywords and WhatsApp's own
/// "stop marketing" preference as withdrawals, confirmation keywords as double opt-in confirmations.
public struct WhatsAppInbox: Sendable {
    let database: ConsentDatabase
    let pendingLifetime: TimeInterval
    var keyring: TenantKeyring { database.keyring }

    public init(database: ConsentDatabase, pendingLifetime: TimeInterval) {
        self.database = database
        self.pendingLifetime = pendingLifetime
    }

    public static let actor = "whatsapp_webhook"

    public func record(_ events: [WhatsAppEvent], tenantId: UUID, logger: Logger) async throws
        -> WhatsAppDeliveryOutcome
    {
        var outcome = WhatsAppDeliveryOutcome()
        let caller = CallerIdentity.channel(Self.actor, tenantId: tenantId, vouchedBy: nil)
        let blindKey = try await keyring.blindIndexKey(tenantId: tenantId, client: database.client, logger: logger)
        /// The WhatsApp id as a subject and its blind index; nil for an id that is not a phone number.
        func person(_ waId: String) -> (SubjectIdentifier, [UInt8])? {
            guard let subject = try? SubjectIdentifier(WhatsAppEvent.phoneNumber(waId: waId), channel: .whatsapp) else {
                return nil
            }
            return (subject, BlindIndex.compute(subject, key: blindKey))
        }
        for event in events {
            switch event {
            case .inbound(let messageId, let from, let at, let text, let fromAd):
                guard let (subject, blindIndex) = person(from) else {
                    outcome.skipped += 1
                    continue
                }
                let interactionId = UUID()
                let messageHash = Array(SHA256.hash(data: Array(messageId.utf8)))
                let work = UnitOfWork<InteractionResult?>(
                    tenantId: tenantId, changes: { $0?.changes ?? [] },
                    body: { [keyring, pendingLifetime] connection, logger in
                        // Claimed first: a concurrent retry of the same message waits here for this transaction and
                        // then finds the id taken.
                        let claimed = try await connection.query(
                            """
                            INSERT INTO whatsapp_messages_seen (tenant_id, message_sha256, interaction_id)
                            VALUES (\(tenantId), \(ByteBuffer(bytes: messageHash)), \(interactionId))
                            ON CONFLICT (tenant_id, message_sha256) DO NOTHING RETURNING interaction_id
                            """, logger: logger
                        ).collect()
                        guard !claimed.isEmpty else { return nil }
                        return try await ConsentLedger.recordInteraction(
                            from: subject, blindIndex: blindIndex, occurredAt: min(at, Date()),
                            text: text.map(Self.bounded), fromAd: fromAd,
                            tenantId: tenantId, caller: caller, keyring: keyring, interactionId: interactionId,
                            pendingLifetime: pendingLifetime, on: connection, logger: logger)
                    })
                guard let result = try await database.commit(work, logger: logger) else {
                    outcome.duplicates += 1
                    continue
                }
                outcome.messagesRecorded += 1
                outcome.changed(result.change.position)
                outcome.withdrawals += result.revoked.count
                outcome.confirmations += result.confirmed.count
            case .marketingStopped(let waId, let at):
                guard let (subject, blindIndex) = person(waId) else {
                    outcome.skipped += 1
                    continue
                }
                // Meta's timestamp is in whole seconds: the stop happened somewhere in that second, so an opt-in
                // within it is not known to come after the stop and does not lift it. A clock ahead of ours is
                // trusted by a second at most.
                let now = Date()
                let stoppedAt = min((at ?? now).addingTimeInterval(0.999), now.addingTimeInterval(1))
                let result = try await database.commit(
                    UnitOfWork(tenantId: tenantId) { connection, logger in
                        try await Self.stopMarketing(
                            subject, blindIndex: blindIndex, at: stoppedAt, tenantId: tenantId, caller: caller,
                            on: connection, logger: logger)
                    }, logger: logger)
                outcome.withdrawals += result.revoked.count
                outcome.changed(result.change.position)
            case .marketingResumed:
                // Resuming in the app is not consent to a notice: nothing is granted, the shop must ask again.
                outcome.preferencesNoted += 1
            case .templateStatus(let name, let language, let status, let event, let reason, let at):
                try await template(
                    .status(status, platformEvent: event, reason: reason, at: at), name: name, language: language,
                    tenantId: tenantId, outcome: &outcome, logger: logger)
            case .templateCategory(let name, let language, let category, let at):
                try await template(
                    .category(category, at: at), name: name, language: language, tenantId: tenantId, outcome: &outcome,
                    logger: logger)
            case .templateQuality(let name, let language, let score):
                try await template(
                    .quality(score), name: name, language: language, tenantId: tenantId, outcome: &outcome,
                    logger: logger)
            }
        }
        return outcome
    }

    /// A template change from the platform; one the tenant never registered is counted as skipped.
    private func template(
        _ change: TemplatePlatformChange, name: String, language: String, tenantId: UUID,
        outcome: inout WhatsAppDeliveryOutcome, logger: Logger
    ) async throws {
        let applied = try await database.templates.applyPlatformChange(
            change, name: name, language: language, tenantId: tenantId, actor: Self.actor, logger: logger)
        guard let applied else {
            outcome.skipped += 1
            return
        }
        outcome.templateChanges += 1
        outcome.changed(applied.position)
    }

    /// The person stopped marketing in WhatsApp itself: the `marketing` purpose is withdrawn, and the stop is noted
    /// on the person, because the platform refuses every marketing send after it (error 131050), for the tenant's
    /// own marketing purposes too, until the person opts in again (`ConsentCheck`, `marketing_stopped`).
    static func stopMarketing(
        _ subject: SubjectIdentifier, blindIndex: [UInt8], at stoppedAt: Date, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> RevocationResult {
        // A stop Meta delivers late (it retries for hours) must not withdraw an opt-in the person gave after it.
        let givenSince =
            try await connection.query(
                """
                SELECT count(*)::int8 FROM subjects s JOIN consents c ON c.subject_id = s.id
                WHERE s.channel = 'whatsapp' AND s.blind_index = \(ByteBuffer(bytes: blindIndex)) AND s.erased_at IS NULL
                  AND c.purpose = 'marketing' AND c.status IN ('granted', 'pending')
                  AND (SELECT max(col.collected_at) FROM consent_evidence e JOIN collections col ON col.id = e.collection_id
                       WHERE e.consent_id = c.id) > \(stoppedAt)
                """, logger: logger
            ).decode(Int64.self).array().first ?? 0
        let result = try await ConsentLedger.revoke(
            subject: blindIndex, identifier: subject, channel: .whatsapp, purposes: givenSince > 0 ? [] : ["marketing"],
            source: .channelPreference, tenantId: tenantId, caller: caller, on: connection, logger: logger)
        let noted = try await connection.query(
            """
            UPDATE subjects SET marketing_stopped_at = greatest(marketing_stopped_at, \(stoppedAt))
            WHERE channel = 'whatsapp' AND blind_index = \(ByteBuffer(bytes: blindIndex)) AND erased_at IS NULL
            RETURNING id
            """, logger: logger
        ).decode(UUID.self).array()
        if let subjectId = noted.first {
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .marketingStopped, actor: caller.actor, subjectRef: subjectId,
                        data: ["channel": .string("whatsapp"), "stoppedAt": .string(RFC3339.format(stoppedAt))])
                ], tenantId: tenantId, on: connection, logger: logger)
        }
        return result
    }

    /// Message texts are kept (sealed) up to the API's own limit for interactions.
    static func bounded(_ text: String) -> String {
        text.utf8.count <= 4096 ? text : String(decoding: Array(text.utf8.prefix(4096)), as: UTF8.self)
    }
}
