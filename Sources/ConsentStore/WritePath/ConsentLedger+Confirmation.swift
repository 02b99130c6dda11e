import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// How a double opt-in was confirmed: the audit event says which.
    public enum Confirmation: Sendable, Equatable {
        case api
        case reply(interactionId: UUID)
    }

    /// Confirms the subject's pending consents on the channel that are younger than `lifetime`: one of them
    /// (`consentId`) or all of them (a "YES" reply confirms what the person was asked). A reply confirms only what
    /// was asked before it was written and was still within its lifetime then (`askedBefore`: the message's time),
    /// so a late or replayed "YES" cannot confirm a request made after it.
    static func confirmPending(
        subjectId: UUID, consentId: UUID?, channel: MessageChannel, via: Confirmation, askedBefore: Date? = nil,
        lifetime: TimeInterval,
        caller: CallerIdentity, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> [RecordedConsent] {
        let confirmed = try await decodeConsents(
            connection.closeSafeQuery(
                """
                UPDATE consents SET status = 'granted', granted_at = now()
                WHERE subject_id = \(subjectId) AND status = 'pending'
                  AND (\(consentId)::uuid IS NULL OR id = \(consentId))
                  AND created_at > now() - make_interval(secs => \(lifetime))
                  AND (\(askedBefore)::timestamptz IS NULL OR (created_at <= \(askedBefore)
                       AND created_at > \(askedBefore)::timestamptz - make_interval(secs => \(lifetime))))
                RETURNING id, purpose, status, granted_at
                """, logger: logger)
        ).sorted { ($0.purpose, $0.id.uuidString) < ($1.purpose, $1.id.uuidString) }
        var data: [String: AuditValue] = ["channel": .string(channel.rawValue)]
        switch via {
        case .api: data["via"] = .string("api")
        case .reply(let interactionId):
            data["via"] = .string("reply")
            data["interactionId"] = .id(interactionId)
        }
        try await AuditTrail.append(
            confirmed.map { consent in
                var fields = data
                fields["consentId"] = .id(consent.id)
                fields["purpose"] = .string(consent.purpose)
                return AuditEvent(action: .consentConfirmed, actor: caller.actor, subjectRef: subjectId, data: fields)
            }, tenantId: tenantId, on: connection, logger: logger)
        return confirmed
    }

    /// `POST /v1/consents/{id}/confirm`: the shop confirmed the person's double opt-in by its own means (a link
    /// in an e-mail, a code typed back).
    static func confirm(
        consentId: UUID, lifetime: TimeInterval, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ConfirmOutcome {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT c.subject_id, c.channel, c.purpose, c.status, c.granted_at,
                   c.created_at <= now() - make_interval(secs => \(lifetime)), s.blind_index
            FROM consents c JOIN subjects s ON s.id = c.subject_id
            WHERE c.id = \(consentId) AND s.erased_at IS NULL
            FOR UPDATE OF c
            """, logger: logger)
        guard
            let (subjectId, channelText, purpose, status, grantedAt, stale, blindIndex) = try await rows.decode(
                (UUID, String, String, String, Date?, Bool, ByteBuffer?).self
            ).array().first, let channel = MessageChannel(rawValue: channelText), let blindIndex
        else { return .notFound }
        switch ConsentStatus(rawValue: status) {
        case .granted:
            return .alreadyGranted(
                RecordedConsent(id: consentId, purpose: purpose, status: .granted, grantedAt: grantedAt))
        // Superseded was never in force: like a withdrawn one, it cannot be brought back by confirming it.
        case .withdrawn, .superseded: return .withdrawn
        case .expired: return .expired
        case .pending, nil:
            if stale { return .expired }
        }
        let index = Array(blindIndex.readableBytesView)
        guard
            let consent = try await confirmPending(
                subjectId: subjectId, consentId: consentId, channel: channel, via: .api, lifetime: lifetime,
                caller: caller, tenantId: tenantId, on: connection, logger: logger
            ).first
        else { return .expired }
        return .confirmed(
            consent,
            try await changePosition(
                tenantId: tenantId, channel: channel, blindIndex: index, on: connection, logger: logger))
    }
}
