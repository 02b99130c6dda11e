import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// Withdraws the subject's active consents on the channel: the purposes named, or all of them. A withdrawal of
    /// everything for someone the tenant does not know (never met, or erased) is an objection to being messaged:
    /// with `suppression` on it is kept as a suppression entry, so an old list cannot bring the person back.
    public static func revoke(
        subject blindIndex: [UInt8], identifier: SubjectIdentifier? = nil, channel: MessageChannel, purposes: [String]?,
        source: RevocationSource, tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring? = nil,
        suppression: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> RevocationResult {
        if let purposes {
            let unknown = try await PurposeStore.unknown(purposes, on: connection, logger: logger)
            guard unknown.isEmpty else { throw ConsentWriteError.unknownPurposes(unknown) }
        }
        var revoked: [RevokedConsent] = []
        if let subjectId = try await SubjectDirectory.find(
            blindIndex: blindIndex, channel: channel, on: connection, logger: logger)
        {
            revoked = try await withdraw(
                subjectId: subjectId, channel: channel, purposes: purposes, source: source, tenantId: tenantId,
                caller: caller, on: connection, logger: logger)
        } else if suppression, purposes == nil, let identifier, let keyring {
            try await SuppressionList.add(
                identifier, reason: .objected, tenantId: tenantId, actor: caller.actor, keyring: keyring,
                on: connection, logger: logger)
        }
        return RevocationResult(
            revoked: revoked,
            change: try await changePosition(
                tenantId: tenantId, channel: channel, blindIndex: blindIndex, on: connection, logger: logger))
    }

    static func withdraw(
        subjectId: UUID, channel: MessageChannel, purposes: [String]?, source: RevocationSource, tenantId: UUID,
        caller: CallerIdentity, on connection: PostgresConnection, logger: Logger
    ) async throws -> [RevokedConsent] {
        let everything = purposes == nil
        let rows = try await connection.query(
            """
            UPDATE consents SET status = 'withdrawn', revoked_at = now(), revoke_source = \(source.rawValue),
                   revoked_by = \(caller.keyId)
            WHERE subject_id = \(subjectId) AND status IN ('granted', 'pending')
              AND (\(everything) OR purpose = ANY(\(purposes ?? [])::text[]))
            RETURNING id, purpose, revoked_at
            """, logger: logger)
        var revoked: [RevokedConsent] = []
        for try await (id, purpose, revokedAt) in rows.decode((UUID, String, Date).self) {
            revoked.append(RevokedConsent(id: id, purpose: purpose, revokedAt: revokedAt))
        }
        revoked.sort { ($0.purpose, $0.id.uuidString) < ($1.purpose, $1.id.uuidString) }
        try await AuditTrail.append(
            revoked.map { consent in
                AuditEvent(
                    action: "consent.withdrawn", actor: caller.actor, subjectRef: subjectId,
                    data: [
                        "consentId": .id(consent.id), "purpose": .string(consent.purpose),
                        "channel": .string(channel.rawValue), "source": .string(source.rawValue),
                    ])
            }, tenantId: tenantId, on: connection, logger: logger)
        return revoked
    }
}
