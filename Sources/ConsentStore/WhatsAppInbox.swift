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
    /// How each message or preference that said stop said it, in the order received.
    public var optOuts: [OptOutKind] = []
    /// Messages for a business number the tenant did not configure, or older than the replay window: refused.
    public var refused = 0
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
    /// How long message ids are remembered (the idempotency period): an older message could not be told from a
    /// replay, so it is refused rather than recorded twice.
    let replayWindow: TimeInterval
    var keyring: TenantKeyring { database.keyring }

    public init(database: ConsentDatabase, pendingLifetime: TimeInterval, replayWindow: TimeInterval) {
        self.database = database
        self.pendingLifetime = pendingLifetime
        self.replayWindow = replayWindow
    }

    public static let actor = "whatsapp_webhook"

    public func record(_ events: [WhatsAppEvent], tenantId: UUID, logger: Logger) async throws
        -> WhatsAppDeliveryOutcome
    {
        var outcome = WhatsAppDeliveryOutcome()
        let caller = CallerIdentity.channel(Self.actor, tenantId: tenantId, vouchedBy: nil)
        let blindKey = try await keyring.blindIndexKey(tenantId: tenantId, client: database.client, logger: logger)
        let routing = try await database.settings.whatsAppRouting(tenantId: tenantId, logger: logger)
        let oldest = Date().addingTimeInterval(-replayWindow)
        /// The WhatsApp id as a subject and its blind index; nil for an id that is not a phone number.
        func person(_ waId: String) -> (SubjectIdentifier, [UInt8])? {
            guard let subject = try? SubjectIdentifier(WhatsAppEvent.phoneNumber(waId: waId), channel: .whatsapp) else {
                return nil
            }
            return (subject, BlindIndex.compute(subject, key: blindKey))
        }
        for event in events {
            switch event {
            case .inbound(let messageId, let from, let at, let text, let fromAd, let button, let businessNumberId):
                guard let (subject, blindIndex) = person(from) else {
                    outcome.skipped += 1
                    continue
                }
                guard routing.accepts(businessNumberId: businessNumberId), at >= oldest else {
                    outcome.refused += 1
                    continue
                }
                let stopButton =
                    button.map {
                        OptOutDetector.isStopButton(
                            title: $0.title, payload: $0.payload, configuredPayloads: routing.stopPayloads)
                    } ?? false
                let occurredAt = min(at, Date())
                // Meta's timestamps are whole seconds: the message was written within that second.
                let writtenBy = min(at.addingTimeInterval(0.999), Date())
                let interactionId = UUID()
                let messageHash = Array(SHA256.hash(data: Array(messageId.utf8)))
                let work = UnitOfWork<InteractionResult?>(
                    tenantId: tenantId, changes: { $0?.changes ?? [] },
                    body: { [keyring, pendingLifetime] connection, logger in
                        // Claimed first: a concurrent retry of the same message waits here for this transaction and
                        // then finds the id taken.
                        let claimed = try await connection.closeSafeQuery(
                            """
                            INSERT INTO whatsapp_messages_seen (tenant_id, message_sha256, interaction_id)
                            VALUES (\(tenantId), \(ByteBuffer(bytes: messageHash)), \(interactionId))
                            ON CONFLICT (tenant_id, message_sha256) DO NOTHING RETURNING interaction_id
                            """, logger: logger
                        ).collect()
                        guard !claimed.isEmpty else { return nil }
                        let result = try await ConsentLedger.recordInteraction(
                            from: subject, blindIndex: blindIndex, occurredAt: occurredAt,
                            text: text.map(Self.bounded), fromAd: fromAd, optOut: stopButton ? .button : nil,
                            confirming: button?.confirmedConsentId, writtenBy: writtenBy, tenantId: tenantId,
                            caller: caller,
                            keyring: keyring, interactionId: interactionId, pendingLifetime: pendingLifetime,
                            on: connection, logger: logger)
                        // The platform's stop button is its marketing stop: checks answer 131050 from now on.
                        if stopButton {
                            try await Self.noteMarketingStop(
                                subjectId: nil, blindIndex: blindIndex, at: occurredAt, tenantId: tenantId,
                                caller: caller, on: connection, logger: logger)
                        }
                        return result
                    })
                guard let result = try await database.commit(work, logger: logger) else {
                    outcome.duplicates += 1
                    continue
                }
                outcome.messagesRecorded += 1
                outcome.changed(result.change.position)
                outcome.withdrawals += result.revoked.count
                outcome.confirmations += result.confirmed.count
                if let optOut = result.optOut { outcome.optOuts.append(optOut) }
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
                outcome.optOuts.append(.platform)
                outcome.changed(result.change.position)
            case .marketingResumed(let waId, let at):
                // Resuming in the app is not consent to a notice: nothing is granted, the shop must ask again. It is
                // recorded, so the DPO can see it.
                guard let (_, blindIndex) = person(waId) else {
                    outcome.skipped += 1
                    continue
                }
                try await database.commit(
                    UnitOfWork(tenantId: tenantId, changes: { _ in [] }) { connection, logger in
                        try await Self.noteMarketingResumed(
                            blindIndex: blindIndex, at: min(at ?? Date(), Date()), tenantId: tenantId, caller: caller,
                            on: connection, logger: logger)
                    }, logger: logger)
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

    /// The person stopped marketing in WhatsApp itself: every marketing-category purpose on WhatsApp is withdrawn
    /// (the tenant's own included), and the stop is noted on the person, because the platform refuses every
    /// marketing send after it (error 131050) until the person opts in again (`ConsentCheck`,
    /// `marketing_stopped`). The stop is dated `stoppedAt`: an opt-in given after it (a stop the platform delivers
    /// hours late) is not withdrawn, and one collected before it is superseded if it arrives later.
    static func stopMarketing(
        _ subject: SubjectIdentifier, blindIndex: [UInt8], at stoppedAt: Date, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> RevocationResult {
        let subjectId = try await SubjectDirectory.find(
            blindIndex: blindIndex, channel: .whatsapp, on: connection, logger: logger)
        var revoked: [RevokedConsent] = []
        if let subjectId {
            revoked = try await ConsentLedger.withdraw(
                subjectId: subjectId, channel: .whatsapp, purposes: nil, category: .marketing, stoppedAt: stoppedAt,
                source: .channelPreference, tenantId: tenantId, caller: caller, on: connection, logger: logger)
            try await noteMarketingStop(
                subjectId: subjectId, blindIndex: blindIndex, at: stoppedAt, tenantId: tenantId, caller: caller,
                on: connection, logger: logger)
        }
        let change = try await ConsentLedger.changePosition(
            tenantId: tenantId, channel: .whatsapp, blindIndex: blindIndex, on: connection, logger: logger)
        return RevocationResult(revoked: revoked, change: change)
    }

    /// The platform's marketing stop on the person, which checks read, with its audit event.
    static func noteMarketingStop(
        subjectId: UUID?, blindIndex: [UInt8], at stoppedAt: Date, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let noted = try await connection.closeSafeQuery(
            """
            UPDATE subjects SET marketing_stopped_at = greatest(marketing_stopped_at, \(stoppedAt))
            WHERE channel = 'whatsapp' AND blind_index = \(ByteBuffer(bytes: blindIndex)) AND erased_at IS NULL
            RETURNING id
            """, logger: logger
        ).decode(UUID.self).array()
        guard let subjectId = noted.first ?? subjectId else { return }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .marketingStopped, actor: caller.actor, subjectRef: subjectId,
                    data: ["channel": .string("whatsapp"), "stoppedAt": .string(RFC3339.format(stoppedAt))])
            ], tenantId: tenantId, on: connection, logger: logger)
    }

    /// A resume in the app, noted for the DPO; it grants nothing and does not lift the stop (a new opt-in does).
    static func noteMarketingResumed(
        blindIndex: [UInt8], at resumedAt: Date, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard
            let subjectId = try await SubjectDirectory.find(
                blindIndex: blindIndex, channel: .whatsapp, on: connection, logger: logger)
        else { return }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .marketingResumed, actor: caller.actor, subjectRef: subjectId,
                    data: ["channel": .string("whatsapp"), "resumedAt": .string(RFC3339.format(resumedAt))])
            ], tenantId: tenantId, on: connection, logger: logger)
    }

    /// Message texts are kept (sealed) up to the API's own limit for interactions.
    static func bounded(_ text: String) -> String {
        text.utf8.count <= 4096 ? text : String(decoding: Array(text.utf8.prefix(4096)), as: UTF8.self)
    }
}
