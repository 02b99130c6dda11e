import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

/// The change log against a real PostgreSQL: a listener applies every committed change once, including one whose
/// position is older than changes it has already applied, and without any NOTIFY (its poll finds them).
@Suite struct ChangeFeedTests {
    func cached(_ cache: ConsentStateCache, _ key: ConsentStateCache.Key) -> Bool {
        cache.lookup([key], purpose: "marketing").found[key] != nil
    }

    func fill(_ cache: ConsentStateCache, _ keys: [ConsentStateCache.Key]) {
        let ticket = cache.lookup(keys, purpose: "marketing").ticket
        cache.fill(
            Dictionary(uniqueKeysWithValues: keys.map { ($0, nil) }), purpose: "marketing", ticket: ticket, covered: 0)
    }

    /// Waits up to ten seconds for `condition`; the listener's poll is one second.
    /// Up to 30 s: under the whole suite on two cores a listener's reconnection has taken more than 10.
    func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<1200 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return condition()
    }

    func position(_ key: ConsentStateCache.Key, on connection: PostgresConnection, logger: Logger) async throws -> Int64
    {
        let rows = try await connection.query(
            "SELECT app_change_position('', \(ConsentChange.payloadPrefix(key)))", logger: logger)
        for try await position in rows.decode(Int64.self) { return position }
        throw NoPosition()
    }

    struct NoPosition: Error {}

    static func databaseWithTenant() async throws -> (TestDatabase, UUID) {
        let database = try await TestDatabase.fresh()
        let tenant = try await database.withClient(\.owner) { client throws in
            try await TenantStore(client: client).create(TenantName("acme")!, logger: database.logger).id
        }
        return (database, tenant)
    }

    /// Commits one change position for `key` in its own tenant transaction.
    func commitPosition(_ key: ConsentStateCache.Key, tenant: UUID, client: PostgresClient, logger: Logger)
        async throws
    {
        _ = try await client.withTenantTransaction(tenant, logger: logger) { connection in
            try await position(key, on: connection, logger: logger)
        }
    }

    @Test func aChangeCommittedAfterALaterPositionReachesTheCache() async throws {
        let (database, tenant) = try await Self.databaseWithTenant()
        let logger = database.logger
        let early = ConsentStateCache.Key(
            tenantId: tenant, channel: .whatsapp, blindIndex: Array(repeating: 1, count: 32))
        let late = ConsentStateCache.Key(
            tenantId: tenant, channel: .whatsapp, blindIndex: Array(repeating: 2, count: 32))
        let cache = ConsentStateCache(capacity: 16)
        try await database.withClient(\.app) { client throws in
            let listener = ConsentChangeListener(
                connector: DedicatedConnector(url: database.app), cache: cache)
            let following = Task { await listener.run(poll: .milliseconds(200), logger: logger) }
            defer { following.cancel() }
            #expect(try await eventually { cache.isListening })
            fill(cache, [early, late])
            #expect(cached(cache, early) && cached(cache, late))

            let (earlyPosition, latePosition) = try await client.withTenantTransaction(tenant, logger: logger) {
                connection in
                let earlyPosition = try await position(early, on: connection, logger: logger)
                let latePosition = try await client.withTenantTransaction(tenant, logger: logger) { other in
                    try await position(late, on: other, logger: logger)
                }
                #expect(try await eventually { !cached(cache, late) }, "the committed change is applied")
                #expect(cached(cache, early), "the open transaction's change is not visible yet")
                return (earlyPosition, latePosition)
            }
            #expect(earlyPosition < latePosition)
            #expect(try await eventually { !cached(cache, early) }, "the earlier position, committed later, is applied")
            #expect(cache.statistics.invalidations == 2, "each change applied once, however often it was read")
        }
    }

    @Test func theLogNamesTheSubjectAndKeepsNothingOfARolledBackWrite() async throws {
        let (database, tenant) = try await Self.databaseWithTenant()
        let logger = database.logger
        let key = ConsentStateCache.Key(tenantId: tenant, channel: .sms, blindIndex: Array(repeating: 3, count: 32))
        try await database.withClient(\.app) { client throws in
            struct Abandoned: Error {}
            await #expect(throws: Abandoned.self) {
                try await client.withTenantTransaction(tenant, logger: logger) { connection in
                    _ = try await position(key, on: connection, logger: logger)
                    throw Abandoned()
                }
            }
            try await commitPosition(key, tenant: tenant, client: client, logger: logger)
        }
        #expect(try await database.count("SELECT count(*)::int8 FROM consent_change_log") == 1)
        let subject = String(repeating: "03", count: 32)
        #expect(
            try await database.count(
                """
                SELECT count(*)::int8 FROM consent_change_log
                WHERE tenant_id = '\(tenant)' AND channel = 'sms' AND blind_index = '\\x\(subject)'::bytea
                """) == 1, "the row names the subject as the prefix did")
    }

    @Test func retentionPrunesRowsOlderThanFiveMinutes() async throws {
        let (database, tenant) = try await Self.databaseWithTenant()
        let logger = database.logger
        let key = ConsentStateCache.Key(tenantId: tenant, channel: .email, blindIndex: Array(repeating: 4, count: 32))
        try await database.withClient(\.app) { client throws in
            try await commitPosition(key, tenant: tenant, client: client, logger: logger)
            let purger = RetentionPurger(client: client, policy: .default)
            try await purger.purgeAll(now: Date().addingTimeInterval(240), logger: logger)
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_change_log") == 1, "four minutes on")
            try await purger.purgeAll(now: Date().addingTimeInterval(360), logger: logger)
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_change_log") == 0, "six minutes on")
        }
    }

    /// Issue 21, finding 1: a listener whose connection stays open but answers nothing (here its log read waits
    /// behind a lock; in production a flow that died without a FIN) used to keep the caches answering for ever.
    /// Now they stop within the freshness bound, and come back once the feed proves itself again.
    @Test func aListenerThatGoesQuietTurnsTheCachesOffUntilItProvesItselfAgain() async throws {
        let (database, _) = try await Self.databaseWithTenant()
        let logger = database.logger
        let cache = ConsentStateCache(capacity: 16)
        let keys = APIKeyCache(capacity: 4)
        try await database.withClient(\.app) { client throws in
            let listener = ConsentChangeListener(
                connector: DedicatedConnector(url: database.app), cache: cache, keys: keys)
            let following = Task {
                await listener.run(retry: .milliseconds(200), poll: .milliseconds(200), logger: logger)
            }
            defer { following.cancel() }
            #expect(try await eventually { cache.isListening })
            let hash = Array(repeating: UInt8(9), count: 32)
            let identity = CallerIdentity(keyId: UUID(), tenantId: UUID(), scopes: [.consentCheck])
            keys.fill(hash, identity: identity, generation: keys.lookup(hash).generation)
            #expect(keys.lookup(hash).identity == identity)

            let holding = Task {
                try await database.withClient(\.superuser) { superuser in
                    try await superuser.withTransaction(logger: logger) { connection in
                        try await connection.query(
                            "LOCK TABLE consent_change_log IN ACCESS EXCLUSIVE MODE", logger: logger)
                        try await connection.query("SELECT pg_sleep(8)", logger: logger)
                    }
                }
            }
            #expect(try await eventually { !cache.isListening }, "the stalled feed turned the check cache off")
            #expect(keys.lookup(hash).identity == nil, "and the key cache: the database answers for keys")
            try await holding.value
            #expect(try await eventually { cache.isListening }, "back once the feed proves itself again")
        }
    }

    @Test func aCommittedWriteWakesAnotherInstanceBeforeItsPoll() async throws {
        let (database, tenant) = try await Self.databaseWithTenant()
        let logger = database.logger
        let cache = ConsentStateCache(capacity: 16)
        try await database.withClient(\.app) { listening throws in
            // The other instance polls once an hour: only the writer's wake-up can bring the change sooner.
            let listener = ConsentChangeListener(
                connector: DedicatedConnector(url: database.app), cache: cache)
            let following = Task { await listener.run(poll: .seconds(3600), logger: logger) }
            defer { following.cancel() }
            #expect(try await eventually { cache.isListening })

            let writer = ConsentDatabase(
                client: PostgresClient(url: database.app, logger: logger),
                connector: DedicatedConnector(url: database.app), keyring: TenantKeyring(masterKey: .random32()),
                checkCache: nil, poolSize: 20)
            let serving = Task { await writer.run() }
            defer { serving.cancel() }
            let ledger = ConsentLedger(keyring: writer.keyring, suppression: false)
            let caller = CallerIdentity(keyId: UUID(), tenantId: tenant, scopes: [.consentWrite])
            let withdrawal = ledger.revoke(
                try SubjectIdentifier("+393330000001", channel: .whatsapp), purposes: nil, source: .api, caller: caller)
            let before = cache.statistics.invalidations
            _ = try await writer.commit(withdrawal, logger: logger)
            #expect(
                try await eventually { cache.statistics.invalidations > before },
                "the listener read the change within ten seconds, not at its hourly poll")
        }
    }
}
