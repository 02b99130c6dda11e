import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// An inbound message: opens or extends the 24-hour window from its time (never moves it back), and a stop
    /// keyword withdraws every purpose on the channel. A message that came from an ad (`fromAd`: a WhatsApp
    /// `referral`, or `entryPoint: ad`) opens the free entry-point window from its time as well. The text is kept
    /// only as ciphertext.
    public static func recordInteraction(
        from subject: SubjectIdentifier, blindIndex: [UInt8], occurredAt: Date, text: String?, fromAd: Bool = false,
        tenantId: UUID,
        caller: CallerIdentity, keyring: TenantKeyring, interactionId id: UUID = UUID(),
        pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> InteractionResult {
        let handle = try await SubjectDirectory.findOrCreate(
            subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        let isStop = text.map(ReplyKeywords.isStop) ?? false
        let isConfirmation = !isStop && (text.map(ReplyKeywords.isConfirmation) ?? false)
        let sealedText = text.map {
            ByteBuffer(bytes: handle.seal(Array($0.utf8), context: "interaction:\(id.lowercased)"))
        }
        try await connection.query(
            """
            INSERT INTO interactions (id, tenant_id, subject_id, direction, kind, occurred_at, received_at, recorded_by,
                                      text_ciphertext)
            VALUES (\(id), \(tenantId), \(handle.id), 'inbound', \(isStop ? "stop_keyword" : "message"), \(occurredAt),
                    now(), \(caller.keyId), \(sealedText))
            """, logger: logger)
        let windows = try await connection.query(
            """
            UPDATE subjects SET last_inbound_at = greatest(last_inbound_at, \(occurredAt)),
                   entry_point_at = CASE WHEN \(fromAd) THEN greatest(entry_point_at, \(occurredAt)) ELSE entry_point_at END
            WHERE id = \(handle.id) RETURNING last_inbound_at
            """, logger: logger)
        let lastInbound = try await windows.decode(Date.self).array().first
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .interactionReceived, actor: caller.actor, subjectRef: handle.id,
                    data: [
                        "interactionId": .id(id), "channel": .string(subject.channel.rawValue),
                        "direction": .string("inbound"), "stopKeyword": .bool(isStop), "fromAd": .bool(fromAd),
                    ])
            ], tenantId: tenantId, on: connection, logger: logger)
        let revoked =
            isStop
            ? try await withdraw(
                subjectId: handle.id, channel: subject.channel, purposes: nil, source: .stopKeyword,
                tenantId: tenantId, caller: caller, on: connection, logger: logger)
            : []
        let confirmed =
            isConfirmation
            ? try await confirmPending(
                subjectId: handle.id, consentId: nil, channel: subject.channel, via: .reply(interactionId: id),
                lifetime: pendingLifetime, caller: caller, tenantId: tenantId, on: connection, logger: logger)
            : []
        return InteractionResult(
            interactionId: id, window: ServiceWindow(lastInboundAt: lastInbound), revoked: revoked,
            confirmed: confirmed,
            change: try await changePosition(
                tenantId: tenantId, channel: subject.channel, blindIndex: blindIndex, on: connection, logger: logger))
    }
}
