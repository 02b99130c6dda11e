import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// Withdraws the subject's active consents on the channel: the purposes named, or all of them. A withdrawal of
    /// everything for someone the tenant does not know (never met, or erased) is an objection to being messaged:
    /// with `suppression` on it is kept as a suppression entry, so an old list cannot bring the person back.
    /// One statement (`app_revoke`), which names its tenant itself.
    public static func revoke(
        subject blindIndex: [UInt8], identifier: SubjectIdentifier? = nil, channel: MessageChannel, purposes: [String]?,
        source: RevocationSource, tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring? = nil,
        suppression: Bool = false, on connection: PostgresConnection, logger: Logger
    ) async throws -> RevocationResult {
        var suppressionHash: ByteBuffer?
        if suppression, purposes == nil, let identifier, let keyring {
            suppressionHash = ByteBuffer(
                bytes: try await keyring.suppressionHash(identifier, tenantId: tenantId, on: connection, logger: logger)
            )
        }
        let key = ConsentStateCache.Key(tenantId: tenantId, channel: channel, blindIndex: blindIndex)
        let rows = try await ConsentWriteError.mapping {
            try await connection.closeSafeQuery(
                """
                SELECT change_position, consent_id, purpose, revoked_at
                FROM app_revoke(\(tenantId), \(channel.rawValue), \(ByteBuffer(bytes: blindIndex)), \(purposes)::text[],
                                \(source.rawValue), \(caller.actor), \(caller.keyId), \(suppressionHash),
                                \(ConsentChange.channel), \(ConsentChange.payloadPrefix(key)))
                """, logger: logger
            ).decode((Int64, UUID?, String?, Date?).self).array()
        }
        guard let position = rows.first?.0 else { throw NoPosition() }
        // The function answers one row even when nothing was withdrawn: the position, and NULLs.
        let revoked = rows.compactMap { _, id, purpose, revokedAt -> RevokedConsent? in
            guard let id, let purpose, let revokedAt else { return nil }
            return RevokedConsent(id: id, purpose: purpose, revokedAt: revokedAt)
        }
        return RevocationResult(revoked: revoked, change: ConsentChange(key: key, position: position))
    }

    /// Records a stop and withdraws the subject's active consents it covers, with their audit events, in (purpose,
    /// id) order, inside the caller's transaction: a STOP reply, an erasure, the person's own page. The stop covers
    /// the purposes named, or every purpose of `category`, or every purpose (both nil). `stoppedAt` is the stop's
    /// own time (a message's, when it was a reply): an opt-in collected after it is not withdrawn, and one collected
    /// before it is superseded if it arrives later (sql/migrations/0012).
    static func withdraw(
        subjectId: UUID, channel: MessageChannel, purposes: [String]?, category: PurposeCategory? = nil,
        stoppedAt: Date? = nil, source: RevocationSource, tenantId: UUID, caller: CallerIdentity,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [RevokedConsent] {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT consent_id, purpose, revoked_at
            FROM app_stop(\(tenantId), \(subjectId), \(channel.rawValue), \(purposes)::text[], \(category?.rawValue),
                          coalesce(\(stoppedAt)::timestamptz, now()), \(source.rawValue), \(caller.actor), \(caller.keyId))
            """, logger: logger)
        var revoked: [RevokedConsent] = []
        for try await (id, purpose, revokedAt) in rows.decode((UUID, String, Date).self) {
            revoked.append(RevokedConsent(id: id, purpose: purpose, revokedAt: revokedAt))
        }
        return revoked
    }
}

extension ConsentWriteError {
    /// Runs `statement` and turns the refusals that the write functions of sql/migrations/0007 raise (SQLSTATE
    /// class CL) into the store's errors.
    static func mapping<Value>(_ statement: () async throws -> Value) async throws -> Value {
        do {
            return try await statement()
        } catch {
            let list = { (DatabaseErrors.serverMessage(error) ?? "").split(separator: ",").map(String.init) }
            switch DatabaseErrors.sqlState(error) {
            case "CL010": throw ConsentWriteError.noticeNotFound
            case "CL011":
                guard let channel = DatabaseErrors.serverMessage(error).flatMap(MessageChannel.init(rawValue:)) else {
                    throw error
                }
                throw ConsentWriteError.noticeForAnotherChannel(channel)
            case "CL012": throw ConsentWriteError.unknownPurposes(list())
            case "CL013": throw ConsentWriteError.purposesNotInNotice(list())
            case "CL015": throw ConsentWriteError.suppressed
            default: throw error
            }
        }
    }
}
