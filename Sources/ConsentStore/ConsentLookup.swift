import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// What a check needs to know about one subject: the consent that decides for the purpose, and the window.
public struct SubjectConsentState: Sendable, Equatable {
    public let subjectId: UUID
    public let consent: ConsentState
    public let window: ServiceWindow
}

public enum ConsentLookupError: Error, Equatable {
    case unknownPurpose(String)
}

/// The read side of checks: from the cache, else one round trip for one subject or ten thousand.
public struct ConsentLookup: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let cache: ConsentStateCache?
    /// How long a read may wait for the database (a pool connection and the query) before `DeadlineExceeded`.
    let readDeadline: Duration?

    public init(
        client: PostgresClient, keyring: TenantKeyring, cache: ConsentStateCache? = nil, readDeadline: Duration? = nil
    ) {
        self.client = client
        self.keyring = keyring
        self.cache = cache
        self.readDeadline = readDeadline
    }

    /// The state of each subject the tenant knows, keyed by position in `subjects`; unknown subjects are absent.
    /// Duplicates are looked up once and answered for each position. With `minimumPosition` (a consistency token),
    /// cached answers older than that change are read again.
    public func states(
        of subjects: [SubjectIdentifier], channel: MessageChannel, purpose: String, tenantId: UUID,
        minimumPosition: Int64 = 0, logger: Logger
    ) async throws -> [SubjectConsentState?] {
        let key = try await keyring.blindIndexKey(tenantId: tenantId, client: client, logger: logger)
        let keys = BlindIndex.compute(subjects, key: key).map {
            ConsentStateCache.Key(tenantId: tenantId, channel: channel, blindIndex: $0)
        }
        let distinct = Array(Set(keys))
        guard let cache else {
            let found = try await read(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
            return keys.map { found[$0] }
        }
        let lookup = cache.lookup(distinct, purpose: purpose, minimumPosition: minimumPosition)
        var answers = lookup.found
        let missing = distinct.filter { lookup.found[$0] == nil }
        if !missing.isEmpty {
            let found = try await read(missing, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
            var fills: [ConsentStateCache.Key: SubjectConsentState?] = [:]
            fills.reserveCapacity(missing.count)
            for key in missing {
                let value = found[key]
                fills[key] = value
                answers[key] = value
            }
            cache.fill(fills, purpose: purpose, ticket: lookup.ticket, covered: minimumPosition)
        }
        return keys.map { answers[$0] ?? nil }
    }

    /// The database's answer for these blind indexes; those absent belong to nobody the tenant knows.
    func read(
        _ distinct: [ConsentStateCache.Key], channel: MessageChannel, purpose: String, tenantId: UUID, logger: Logger
    )
        async throws -> [ConsentStateCache.Key: SubjectConsentState]
    {
        guard let readDeadline else {
            return try await query(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
        }
        return try await withDeadline(readDeadline) {
            try await query(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
        }
    }

    func query(
        _ distinct: [ConsentStateCache.Key], channel: MessageChannel, purpose: String, tenantId: UUID, logger: Logger
    )
        async throws -> [ConsentStateCache.Key: SubjectConsentState]
    {
        do {
            let statement = ConsentStatesStatement(
                tenantId: tenantId, channel: channel.rawValue, purpose: purpose,
                blindIndexes: distinct.map { ByteBuffer(bytes: $0.blindIndex) })
            var found: [ConsentStateCache.Key: SubjectConsentState] = [:]
            for try await row in try await client.execute(statement, logger: logger) {
                let key = ConsentStateCache.Key(
                    tenantId: tenantId, channel: channel, blindIndex: Array(row.blindIndex.readableBytesView))
                found[key] = SubjectConsentState(
                    subjectId: row.subjectId,
                    consent: Self.consentState(
                        id: row.consentId, status: row.status, grantedAt: row.grantedAt, revokedAt: row.revokedAt),
                    window: ServiceWindow(lastInboundAt: row.lastInboundAt))
            }
            return found
        } catch  where DatabaseErrors.sqlState(error) == "CL001" {
            throw ConsentLookupError.unknownPurpose(purpose)
        }
    }

    static func consentState(id: UUID?, status: String?, grantedAt: Date?, revokedAt: Date?) -> ConsentState {
        guard let id else { return .none }
        switch status {
        case "granted": return grantedAt.map { .granted(id: id, grantedAt: $0) } ?? .none
        case "pending": return .pending(id: id)
        case "withdrawn": return revokedAt.map { .withdrawn(id: id, revokedAt: $0) } ?? .none
        default: return .none
        }
    }
}

/// The check path's one query, prepared once per connection: the server parses and plans it once, and each check
/// sends only its bindings.
struct ConsentStatesStatement: PostgresPreparedStatement {
    static let name = "consentd_consent_states"
    static let sql = """
        SELECT blind_index, subject_id, last_inbound_at, consent_id, status, granted_at, revoked_at
        FROM app_consent_states($1, $2, $3, $4)
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .text, .text, .byteaArray]

    typealias Row = (
        blindIndex: ByteBuffer, subjectId: UUID, lastInboundAt: Date?, consentId: UUID?, status: String?,
        grantedAt: Date?, revokedAt: Date?
    )

    let tenantId: UUID
    let channel: String
    let purpose: String
    let blindIndexes: [ByteBuffer]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(tenantId)
        bindings.append(channel)
        bindings.append(purpose)
        bindings.append(blindIndexes)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (index, subject, inbound, consent, status, granted, revoked) = try row.decode(
            (ByteBuffer, UUID, Date?, UUID?, String?, Date?, Date?).self)
        return (index, subject, inbound, consent, status, granted, revoked)
    }
}
