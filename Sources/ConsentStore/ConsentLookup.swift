import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// What a check needs to know about one subject: the consent that decides for the purpose, and the times of the
/// person's messages that the platform's rules turn on.
///
/// A million of these sit in the check cache, so the times few people have (a message from an ad, a WhatsApp
/// marketing stop, and the consent's collection time, which only a stop makes relevant) are kept behind one
/// optional reference: nil, eight bytes, for nearly everyone (docs/benchmarks.md, the RSS row).
public struct SubjectConsentState: Sendable, Equatable {
    public let subjectId: UUID
    public let consent: ConsentState
    public let lastInboundAt: Date?
    private let platform: PlatformTimes?

    private final class PlatformTimes: Sendable {
        let entryPointAt: Date?
        let marketingStoppedAt: Date?
        let consentCollectedAt: Date?

        init(entryPointAt: Date?, marketingStoppedAt: Date?, consentCollectedAt: Date?) {
            self.entryPointAt = entryPointAt
            self.marketingStoppedAt = marketingStoppedAt
            self.consentCollectedAt = consentCollectedAt
        }
    }

    /// `consentCollectedAt` is kept only with a marketing stop, the one rule that reads it.
    public init(
        subjectId: UUID, consent: ConsentState, lastInboundAt: Date?, entryPointAt: Date?, marketingStoppedAt: Date?,
        consentCollectedAt: Date?
    ) {
        self.subjectId = subjectId
        self.consent = consent
        self.lastInboundAt = lastInboundAt
        platform =
            entryPointAt == nil && marketingStoppedAt == nil
            ? nil
            : PlatformTimes(
                entryPointAt: entryPointAt, marketingStoppedAt: marketingStoppedAt,
                consentCollectedAt: marketingStoppedAt == nil ? nil : consentCollectedAt)
    }

    public var entryPointAt: Date? { platform?.entryPointAt }
    public var marketingStoppedAt: Date? { platform?.marketingStoppedAt }
    public var consentCollectedAt: Date? { platform?.consentCollectedAt }

    public static func == (lhs: SubjectConsentState, rhs: SubjectConsentState) -> Bool {
        lhs.subjectId == rhs.subjectId && lhs.consent == rhs.consent && lhs.lastInboundAt == rhs.lastInboundAt
            && lhs.entryPointAt == rhs.entryPointAt && lhs.marketingStoppedAt == rhs.marketingStoppedAt
            && lhs.consentCollectedAt == rhs.consentCollectedAt
    }

    public var facts: SubjectFacts {
        SubjectFacts(
            consent: consent, lastInboundAt: lastInboundAt, entryPointAt: entryPointAt,
            marketingStoppedAt: marketingStoppedAt, consentCollectedAt: consentCollectedAt)
    }
}

/// A check's answer from the store: the category of the purpose asked about, and each subject's state (nil for a
/// subject the tenant does not know), by position in the question.
public struct CheckFacts: Sendable {
    public let purposeCategory: PurposeCategory
    public let states: [SubjectConsentState?]
}

public enum ConsentLookupError: Error, Equatable {
    case unknownPurpose(String)
    /// A category the schema's CHECK constraint should have refused.
    case unknownCategory(String)
}

/// One read of `app_consent_states`: the purpose's category and the subjects found.
struct StatesRead {
    let category: PurposeCategory
    let states: [ConsentStateCache.Key: SubjectConsentState]
}

/// The read side of checks: from the cache, else one round trip for one subject or ten thousand.
public struct ConsentLookup: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let cache: ConsentStateCache?
    let catalogue: CatalogueCache?
    /// How long a read may wait for the database (a pool connection and the query) before `DeadlineExceeded`.
    let readDeadline: Duration?

    public init(
        client: PostgresClient, keyring: TenantKeyring, cache: ConsentStateCache? = nil,
        catalogue: CatalogueCache? = nil, readDeadline: Duration? = nil
    ) {
        self.client = client
        self.keyring = keyring
        self.cache = cache
        self.catalogue = catalogue
        self.readDeadline = readDeadline
    }

    /// The purpose's category and the state of each subject the tenant knows, keyed by position in `subjects`;
    /// unknown subjects are absent. Duplicates are looked up once and answered for each position. With
    /// `minimumPosition` (a consistency token), cached answers older than that change are read again.
    public func facts(
        of subjects: [SubjectIdentifier], channel: MessageChannel, purpose: String, tenantId: UUID,
        minimumPosition: Int64 = 0, logger: Logger
    ) async throws -> CheckFacts {
        let key = try await keyring.blindIndexKey(tenantId: tenantId, client: client, logger: logger)
        let keys = BlindIndex.compute(subjects, key: key).map {
            ConsentStateCache.Key(tenantId: tenantId, channel: channel, blindIndex: $0)
        }
        let distinct = Array(Set(keys))
        let catalogueLookup = catalogue?.category(of: purpose, tenantId: tenantId, minimumPosition: minimumPosition)
        guard let cache else {
            let found = try await read(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
            return CheckFacts(purposeCategory: found.category, states: keys.map { found.states[$0] })
        }
        let lookup = cache.lookup(distinct, purpose: purpose, minimumPosition: minimumPosition)
        var answers = lookup.found
        let missing = distinct.filter { lookup.found[$0] == nil }
        var category = catalogueLookup?.category
        // Every subject cached but the category not: the read asks for no subject and answers the category alone.
        if !missing.isEmpty || category == nil {
            let found = try await read(missing, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
            if !missing.isEmpty {
                var fills: [ConsentStateCache.Key: SubjectConsentState?] = [:]
                fills.reserveCapacity(missing.count)
                for key in missing {
                    let value = found.states[key]
                    fills[key] = value
                    answers[key] = value
                }
                cache.fill(fills, purpose: purpose, ticket: lookup.ticket, covered: minimumPosition)
            }
            if let catalogueLookup, catalogueLookup.category == nil {
                catalogue?.fill(
                    found.category, of: purpose, tenantId: tenantId, ticket: catalogueLookup.ticket,
                    covered: minimumPosition)
            }
            category = found.category
        }
        guard let category else { throw ConsentLookupError.unknownPurpose(purpose) }
        return CheckFacts(purposeCategory: category, states: keys.map { answers[$0] ?? nil })
    }

    /// The database's answer for these blind indexes; those absent belong to nobody the tenant knows.
    func read(
        _ distinct: [ConsentStateCache.Key], channel: MessageChannel, purpose: String, tenantId: UUID, logger: Logger
    )
        async throws -> StatesRead
    {
        guard let readDeadline else {
            return try await query(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
        }
        return try await withDeadline(readDeadline, grace: .seconds(1)) {
            try await query(distinct, channel: channel, purpose: purpose, tenantId: tenantId, logger: logger)
        }
    }

    func query(
        _ distinct: [ConsentStateCache.Key], channel: MessageChannel, purpose: String, tenantId: UUID, logger: Logger
    )
        async throws -> StatesRead
    {
        do {
            let statement = ConsentStatesStatement(
                tenantId: tenantId, channel: channel.rawValue, purpose: purpose,
                blindIndexes: distinct.map { ByteBuffer(bytes: $0.blindIndex) })
            return try await client.withRequestConnection { connection in
                var found: [ConsentStateCache.Key: SubjectConsentState] = [:]
                var category: PurposeCategory?
                for try await row in try await connection.execute(statement, logger: logger) {
                    guard let blindIndex = row.blindIndex, let subjectId = row.subjectId else {
                        // The one row without a subject carries the purpose's category.
                        guard let text = row.purposeCategory, let known = PurposeCategory(rawValue: text) else {
                            throw ConsentLookupError.unknownCategory(row.purposeCategory ?? "")
                        }
                        category = known
                        continue
                    }
                    let key = ConsentStateCache.Key(
                        tenantId: tenantId, channel: channel, blindIndex: Array(blindIndex.readableBytesView))
                    found[key] = SubjectConsentState(
                        subjectId: subjectId,
                        consent: Self.consentState(
                            id: row.consentId, status: row.status, grantedAt: row.grantedAt, revokedAt: row.revokedAt),
                        lastInboundAt: row.lastInboundAt, entryPointAt: row.entryPointAt,
                        marketingStoppedAt: row.marketingStoppedAt, consentCollectedAt: row.collectedAt)
                }
                guard let category else { throw ConsentLookupError.unknownPurpose(purpose) }
                return StatesRead(category: category, states: found)
            }
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
        SELECT blind_index, subject_id, last_inbound_at, entry_point_at, marketing_stopped_at, consent_id, status,
               granted_at, revoked_at, collected_at, purpose_category
        FROM app_consent_states($1, $2, $3, $4)
        """
    static let bindingDataTypes: [PostgresDataType] = [.uuid, .text, .text, .byteaArray]

    typealias Row = (
        blindIndex: ByteBuffer?, subjectId: UUID?, lastInboundAt: Date?, entryPointAt: Date?,
        marketingStoppedAt: Date?, consentId: UUID?, status: String?, grantedAt: Date?, revokedAt: Date?,
        collectedAt: Date?, purposeCategory: String?
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
        let (index, subject, inbound, entryPoint, stopped, consent, status, granted, revoked, collected, category) =
            try row.decode((ByteBuffer?, UUID?, Date?, Date?, Date?, UUID?, String?, Date?, Date?, Date?, String?).self)
        return (index, subject, inbound, entryPoint, stopped, consent, status, granted, revoked, collected, category)
    }
}
