import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// An inbound message: opens or extends the 24-hour window from its time (never moves it back; the platform
    /// opens it for any message, an opt-out included, and a reply confirming the opt-out is allowed in it). A stop
    /// keyword withdraws every purpose on the channel; an opt-out phrase in a longer message withdraws every
    /// marketing-category purpose at once and opens a DPO review of whether the person meant everything
    /// (`OptOutDetector`). Each stop is dated at the message's time, so a STOP that arrives late does not withdraw
    /// an opt-in given after it. A message that came from an ad (`fromAd`: a WhatsApp `referral`, or `entryPoint:
    /// ad`) opens the free entry-point window from its time as well. A confirmation confirms only double opt-ins
    /// asked before the message was written (`writtenBy`, when its time is coarser than `occurredAt`: WhatsApp's
    /// whole seconds). The text is kept only as ciphertext.
    public static func recordInteraction(
        from subject: SubjectIdentifier, blindIndex: [UInt8], occurredAt: Date, text: String?, fromAd: Bool = false,
        optOut: OptOutKind? = nil, confirming consentId: UUID? = nil, writtenBy: Date? = nil, tenantId: UUID,
        caller: CallerIdentity, keyring: TenantKeyring, interactionId id: UUID = UUID(),
        pendingLifetime: TimeInterval = CollectionPolicy.default.pendingConsentLifetime,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> InteractionResult {
        let handle = try await SubjectDirectory.findOrCreate(
            subject, blindIndex: blindIndex, tenantId: tenantId, keyring: keyring, on: connection, logger: logger)
        // A button the caller recognised (the platform's stop button) outranks what its label says.
        let optOut = optOut ?? text.flatMap(OptOutDetector.classify(message:))
        let isStop = optOut == .keyword
        // A button naming the consent it asks about confirms that one; a typed "YES" what the person was asked.
        let isConfirmation =
            optOut == nil && (consentId != nil || (text.map(ReplyKeywords.isConfirmation) ?? false))
        let sealedText = text.map {
            ByteBuffer(bytes: handle.seal(Array($0.utf8), context: "interaction:\(id.lowercased)"))
        }
        try await connection.closeSafeQuery(
            """
            INSERT INTO interactions (id, tenant_id, subject_id, direction, kind, occurred_at, received_at, recorded_by,
                                      text_ciphertext)
            VALUES (\(id), \(tenantId), \(handle.id), 'inbound', \(isStop ? "stop_keyword" : "message"), \(occurredAt),
                    now(), \(caller.keyId), \(sealedText))
            """, logger: logger)
        let windows = try await connection.closeSafeQuery(
            """
            UPDATE subjects SET last_inbound_at = greatest(last_inbound_at, \(occurredAt)),
                   entry_point_at = CASE WHEN \(fromAd) THEN greatest(entry_point_at, \(occurredAt)) ELSE entry_point_at END
            WHERE id = \(handle.id) RETURNING last_inbound_at
            """, logger: logger)
        let lastInbound = try await windows.decode(Date.self).array().first
        var data: [String: AuditValue] = [
            "interactionId": .id(id), "channel": .string(subject.channel.rawValue), "direction": .string("inbound"),
            "stopKeyword": .bool(isStop), "fromAd": .bool(fromAd),
        ]
        if let optOut { data["optOut"] = .string(optOut.rawValue) }
        try await AuditTrail.append(
            [AuditEvent(action: .interactionReceived, actor: caller.actor, subjectRef: handle.id, data: data)],
            tenantId: tenantId, on: connection, logger: logger)
        var revoked: [RevokedConsent] = []
        var reviewId: UUID?
        // A message time ahead of ours (the API allows five minutes of skew) would date the stop after opt-ins the
        // person gives in those minutes: a stop is never later than when it reached us.
        let stoppedAt = min(occurredAt, Date())
        switch optOut {
        case .keyword:
            revoked = try await withdraw(
                subjectId: handle.id, channel: subject.channel, purposes: nil, stoppedAt: stoppedAt,
                source: .stopKeyword, tenantId: tenantId, caller: caller, on: connection, logger: logger)
        case .phrase:
            revoked = try await withdraw(
                subjectId: handle.id, channel: subject.channel, purposes: nil, category: .marketing,
                stoppedAt: stoppedAt, source: .optOutPhrase, tenantId: tenantId, caller: caller, on: connection,
                logger: logger)
            reviewId = try await OptOutReviews.open(
                subjectId: handle.id, interactionId: id, channel: subject.channel, receivedAt: occurredAt,
                tenantId: tenantId, caller: caller, on: connection, logger: logger)
        case .button, .platform:
            revoked = try await withdraw(
                subjectId: handle.id, channel: subject.channel, purposes: nil, category: .marketing,
                stoppedAt: stoppedAt, source: .stopButton, tenantId: tenantId, caller: caller, on: connection,
                logger: logger)
        case nil:
            break
        }
        let confirmed =
            isConfirmation
            ? try await confirmPending(
                subjectId: handle.id, consentId: consentId, channel: subject.channel, via: .reply(interactionId: id),
                askedBefore: writtenBy ?? occurredAt, lifetime: pendingLifetime, caller: caller, tenantId: tenantId,
                on: connection, logger: logger)
            : []
        return InteractionResult(
            interactionId: id, window: ServiceWindow(lastInboundAt: lastInbound), revoked: revoked,
            confirmed: confirmed, optOut: optOut, reviewId: reviewId,
            change: try await changePosition(
                tenantId: tenantId, channel: subject.channel, blindIndex: blindIndex, on: connection, logger: logger))
    }
}
