import ConsentCore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The store's handle on PostgreSQL: the connection pool (run as a service), the keyring that opens what it
/// stores, and the check path's cache. Every change a request makes to consents, notices, requests or sessions
/// reaches the database through `commit`, which runs one unit of work (in one transaction, or as one statement
/// that is its own) and then, in one place, drops the cached state of the subjects it changed. Keys, settings
/// and console sessions, which no check reads, still commit in their own store transactions.
public struct ConsentDatabase: Sendable, Service {
    let client: PostgresClient
    /// The change listener's and the leaders' connections, outside the pool (`DedicatedConnector`).
    let connector: DedicatedConnector
    public let keyring: TenantKeyring
    /// The check path's cache, kept in step by `ConsentChangeListener`; nil reads the database for every check.
    public let checkCache: ConsentStateCache?
    /// Live API keys, kept by the same listener as the check cache; on even when the check cache is off, so that an
    /// uncached check costs one round trip, not two.
    public let keyCache: APIKeyCache
    /// The categories of tenants' purposes, on with the check cache and kept by the same listener.
    public let catalogueCache: CatalogueCache?
    let announcer = ChangeAnnouncer()
    /// How many units of work may hold a pooled connection at once (`WriteSlots`).
    let writeSlots: WriteSlots
    /// Writes that share one statement with others arriving at the same time.
    let groups: WriteGroups

    /// `poolSize` is the client's `maximumConnections`: a quarter of it is kept from the writes for reads.
    /// `writeGroupDeadline` bounds a group of writes (`WriteGroups`) led outside a request's deadline.
    public init(
        client: PostgresClient, connector: DedicatedConnector, keyring: TenantKeyring, checkCache: ConsentStateCache?,
        poolSize: Int, writeGroupDeadline: Duration = .seconds(30)
    ) {
        self.client = client
        let writeSlots = WriteSlots.forPool(of: poolSize)
        self.writeSlots = writeSlots
        self.groups = WriteGroups(client: client, writeSlots: writeSlots, deadline: writeGroupDeadline)
        self.connector = connector
        self.keyring = keyring
        self.checkCache = checkCache
        self.keyCache = APIKeyCache(capacity: 10_000)
        self.catalogueCache = checkCache == nil ? nil : CatalogueCache()
    }

    /// Runs the pool, and beside it the announcer that wakes other instances after this one's writes; both end
    /// when the pool does.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { [logger = Logger(label: "consentd.changes")] in
                await announcer.run(client: client, logger: logger)
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs `work` (in one transaction of its tenant, or as its one statement) and answers its outcome.
    public func commit<Outcome>(_ work: UnitOfWork<Outcome>, logger: Logger) async throws -> Outcome {
        if case .statement = work.shape {
            // The statement names its tenant itself, and hashes with keys that must be in memory before it.
            try await keyring.load(tenantId: work.tenantId, client: client, logger: logger)
            // A group takes one write slot for all its writes (`WriteGroups`); a write waiting in it holds none.
            if let grouped = work.grouped, let outcome = try await grouped(groups, logger) {
                afterCommit(work, outcome)
                return outcome
            }
        }
        try await writeSlots.acquire()
        defer { writeSlots.release() }
        let outcome: Outcome
        switch work.shape {
        case .transaction:
            outcome = try await client.withTenantTransaction(work.tenantId, logger: logger) { connection in
                try await work.body(connection, logger)
            }
        case .statement:
            outcome = try await client.withRequestConnection { connection in try await work.body(connection, logger) }
        }
        afterCommit(work, outcome)
        return outcome
    }

    /// Runs `work` with its `Idempotency-Key` claim in one transaction: a retry of the same request gets the
    /// response stored by the first (`render`), and runs nothing.
    public func commit<Outcome>(
        _ work: UnitOfWork<Outcome>, idempotency: IdempotencyClaim?, logger: Logger,
        render: (Outcome) throws -> StoredResponse
    ) async throws -> WriteOutcome {
        if idempotency == nil, case .statement = work.shape {
            return .fresh(try render(try await commit(work, logger: logger)))
        }
        try await writeSlots.acquire()
        defer { writeSlots.release() }
        // Nil when the claim replayed a stored response: nothing ran, so nothing changed.
        var committed: Outcome?
        let written = try await TenantWriter(client: client, keyring: keyring).write(
            tenantId: work.tenantId, idempotency: idempotency, logger: logger, render: render
        ) { connection in
            let outcome = try await work.body(connection, logger)
            committed = outcome
            return outcome
        }
        if let committed { afterCommit(work, committed) }
        return written
    }

    /// The one place a write invalidates this instance's caches: after the commit and before the caller answers,
    /// so no check on this instance answers from before a write once its client knows of it, and a revoked key is
    /// refused from the next request on. Other instances read the same consent changes from the change log, woken
    /// by the announcer, and hear of revoked keys by the NOTIFY the revocation committed (`ConsentChangeListener`).
    private func afterCommit<Outcome>(_ work: UnitOfWork<Outcome>, _ outcome: Outcome) {
        for keyId in work.revokedKeys(outcome) { keyCache.revoke(keyId: keyId) }
        let catalogueChange = work.catalogueChange(outcome)
        if let catalogueChange { catalogueCache?.invalidate(work.tenantId, position: catalogueChange) }
        let changes = work.changes(outcome)
        guard !changes.isEmpty || catalogueChange != nil else { return }
        announcer.announce()
        guard let checkCache else { return }
        for change in changes { checkCache.invalidate(change.key, position: change.position) }
    }

    /// Reads in one transaction of the tenant, so row-level security shows that tenant's rows only.
    func read<Result: Sendable>(
        _ tenantId: UUID, logger: Logger, _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in try await body(connection) }
    }
}
