import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// An objection as the API or the DPO received it: one person, under each of their identities.
public struct Objection: Sendable {
    public let subjects: [SubjectIdentifier]
    public let scope: ObjectionScope
    public let source: ObjectionSource
    /// When the person objected: opt-ins collected at or before it never grant again.
    public let occurredAt: Date

    public init(subjects: [SubjectIdentifier], scope: ObjectionScope, source: ObjectionSource, occurredAt: Date) {
        self.subjects = subjects
        self.scope = scope
        self.source = source
        self.occurredAt = occurredAt
    }
}

public struct ObjectionResult: ConsentStateChanging {
    public struct Revoked: Sendable, Equatable {
        public let channel: MessageChannel
        public let consent: RevokedConsent
    }

    /// Names the objection in its audit events.
    public let id: UUID
    public let revoked: [Revoked]
    /// One per identity, known to the tenant or not.
    public let changes: [ConsentChange]

    /// The latest of the objection's changes: a check carrying it sees every identity's.
    public var token: ConsistencyToken { ConsistencyToken(position: changes.map(\.position).max() ?? 0) }
}

extension ConsentLedger {
    /// Applies an objection to each identity in one transaction (`app_object`, sql/migrations/0012): a suppression
    /// entry with the scope and time (kept whether or not the tenant holds the person, and through an erasure),
    /// a stop, and the withdrawal of every consent in the scope.
    static func object(
        _ objection: Objection, id: UUID, tenantId: UUID, caller: CallerIdentity, keyring: TenantKeyring,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> ObjectionResult {
        var revoked: [ObjectionResult.Revoked] = []
        var changes: [ConsentChange] = []
        for subject in objection.subjects {
            let blindIndex = try await keyring.blindIndex(subject, on: connection, tenantId: tenantId, logger: logger)
            let hash = try await keyring.suppressionHash(subject, tenantId: tenantId, on: connection, logger: logger)
            let key = ConsentStateCache.Key(tenantId: tenantId, channel: subject.channel, blindIndex: blindIndex)
            let rows = try await connection.closeSafeQuery(
                """
                SELECT change_position, consent_id, purpose, revoked_at
                FROM app_object(\(tenantId), \(subject.channel.rawValue), \(ByteBuffer(bytes: blindIndex)),
                                \(ByteBuffer(bytes: hash)), \(objection.scope.rawValue), \(objection.occurredAt),
                                \(objection.source.rawValue), \(caller.actor), \(caller.keyId), \(id),
                                \(ConsentChange.payloadPrefix(key)))
                """, logger: logger
            ).decode((Int64, UUID?, String?, Date?).self).array()
            guard let position = rows.first?.0 else { throw NoPosition() }
            changes.append(ConsentChange(key: key, position: position))
            for case (_, let consentId?, let purpose?, let revokedAt?) in rows {
                revoked.append(
                    .init(
                        channel: subject.channel,
                        consent: RevokedConsent(id: consentId, purpose: purpose, revokedAt: revokedAt)))
            }
        }
        return ObjectionResult(id: id, revoked: revoked, changes: changes)
    }
}
