import ConsentCore
import Foundation
import Logging
import PostgresNIO

public enum SuppressionReason: String, Sendable {
    /// The person had withdrawn consent before they were erased.
    case withdrawn
    /// The person objected to being messaged (a STOP reply, or an erasure or withdrawal made as an objection).
    case objected
}

/// Keyed hashes of people who must not be re-imported (Art. 21, ePrivacy): the only thing kept about an erased
/// person, and only when they had withdrawn or objected. Entries are written and read inside the caller's
/// transaction.
enum SuppressionList {
    static func contains(
        _ subject: SubjectIdentifier, tenantId: UUID, keyring: TenantKeyring, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> Bool {
        let hash = try await keyring.suppressionHash(subject, tenantId: tenantId, on: connection, logger: logger)
        return try await connection.closeSafeQuery(
            """
            SELECT EXISTS (SELECT 1 FROM suppressions WHERE tenant_id = \(tenantId) AND keyed_hash = \(ByteBuffer(bytes: hash)))
            """, logger: logger
        ).decode(Bool.self).array().first ?? false
    }

    /// Adds the person for every purpose (an entry from an objection to marketing alone is widened); returns
    /// whether the list changed. The audit event names the channel
    /// and the reason, never the hash: even a keyed hash of an identifier stays out of the append-only log.
    @discardableResult
    static func add(
        _ subject: SubjectIdentifier, reason: SuppressionReason, tenantId: UUID, actor: String, keyring: TenantKeyring,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        let hash = try await keyring.suppressionHash(subject, tenantId: tenantId, on: connection, logger: logger)
        let inserted = try await connection.closeSafeQuery(
            """
            INSERT INTO suppressions (tenant_id, keyed_hash, reason, scope, stopped_at)
            VALUES (\(tenantId), \(ByteBuffer(bytes: hash)), \(reason.rawValue), 'all', now())
            ON CONFLICT (tenant_id, keyed_hash) DO UPDATE SET scope = 'all', stopped_at = now()
                WHERE suppressions.scope <> 'all'
            RETURNING 1
            """, logger: logger
        ).collect()
        guard !inserted.isEmpty else { return false }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .suppressionAdded, actor: actor, subjectRef: nil,
                    data: ["channel": .string(subject.channel.rawValue), "reason": .string(reason.rawValue)])
            ],
            tenantId: tenantId, on: connection, logger: logger)
        return true
    }
}
