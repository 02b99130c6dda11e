import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension ConsentLedger {
    /// The change to one subject's consent state and its position, written to the change log that every instance's
    /// check cache follows, so that it commits with the transaction. One round trip.
    static func changePosition(
        tenantId: UUID, channel: MessageChannel, blindIndex: [UInt8], on connection: PostgresConnection, logger: Logger
    ) async throws -> ConsentChange {
        let key = ConsentStateCache.Key(tenantId: tenantId, channel: channel, blindIndex: blindIndex)
        let rows = try await connection.closeSafeQuery(
            """
            SELECT app_change_position(\(ConsentChange.channel), \(ConsentChange.payloadPrefix(key)))
            """, logger: logger)
        guard let position = try await rows.decode(Int64.self).array().first else { throw NoPosition() }
        return ConsentChange(key: key, position: position)
    }

    /// A change to the tenant's catalogue (a purpose's category), written to the same log: every instance drops
    /// what it cached of the catalogue. Its position is a consistency token like a subject's.
    static func catalogueChange(tenantId: UUID, on connection: PostgresConnection, logger: Logger) async throws
        -> Int64
    {
        let rows = try await connection.closeSafeQuery("SELECT app_catalogue_change(\(tenantId))", logger: logger)
        guard let position = try await rows.decode(Int64.self).array().first else { throw NoPosition() }
        return position
    }

    /// `nextval` answered no row: the write must not be acknowledged without its token.
    struct NoPosition: Error {}

    /// Rows of `id, purpose, status, granted_at`.
    static func decodeConsents(_ rows: StoreRows) async throws -> [RecordedConsent] {
        var consents: [RecordedConsent] = []
        for try await (id, purpose, status, grantedAt) in rows.decode((UUID, String, String, Date?).self) {
            guard let status = ConsentStatus(rawValue: status) else { throw UnknownStatus(text: status) }
            consents.append(RecordedConsent(id: id, purpose: purpose, status: status, grantedAt: grantedAt))
        }
        return consents
    }

    /// A status the CHECK constraint does not allow: the schema and this build disagree.
    struct UnknownStatus: Error {
        let text: String
    }
}
