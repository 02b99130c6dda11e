import ConsentCore
import ConsentTesting
import Foundation
import NIOCore
import PostgresNIO
import Testing

@testable import ConsentStore

/// An import's worker dying: its chunks wait, nobody else records them while its lease runs, and once it has run
/// out the next worker records every line, each exactly once (issue 22, rule 4).
@Suite struct ImportRecoveryTests {
    /// A file arriving in the pieces given.
    struct Pieces: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let pieces: [String]
        struct AsyncIterator: AsyncIteratorProtocol {
            var remaining: [String]
            mutating func next() async -> ByteBuffer? {
                remaining.isEmpty ? nil : ByteBuffer(string: remaining.removeFirst())
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: pieces) }
    }

    static func execute(_ sql: String, in database: TestDatabase) async throws {
        try await database.withClient(\.superuser) { client throws in
            _ = try await client.query(PostgresQuery(unsafeSQL: sql)).collect()
        }
    }

    @Test func aDeadWorkersImportIsTakenOverOnceItsLeaseRunsOutAndEachLineIsRecordedOnce() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await GroupedOptInTests.tenant("importer", database: database)
        let logger = database.logger
        let (store, serving) = GroupedOptInTests.runningStore(database)
        defer { serving.cancel() }
        let ledger = ConsentLedger(keyring: store.keyring, suppression: true)
        let arrivals = ImportArrivals()
        let file =
            "subject,purposes,collectedAt\n"
            + (0..<7).map { "+39333600000\($0),marketing,2025-01-01T00:00:00Z\n" }.joined()
        let summary = try await store.imports(arrivals: arrivals).receive(
            Pieces(pieces: [String(file.prefix(40)), String(file.dropFirst(40))]),
            parameters: ImportParameters(
                channel: .whatsapp, noticeId: tenant.whatsappNotice, format: .csv, dryRun: false),
            recordedBy: try #require(tenant.caller.keyId), actor: tenant.caller.actor, tenantId: tenant.id,
            chunkLines: 2, logger: logger)
        #expect(summary.status == .running && summary.rowsRead == 7)
        #expect(try await database.count("SELECT count(*)::int8 FROM import_chunks") == 4)

        // Another instance took it and died: its lease still runs.
        try await Self.execute(
            "UPDATE imports SET lease_holder = gen_random_uuid(), lease_until = now() + interval '1 hour'",
            in: database)
        let worker = ImportWorker(database: store, ledger: ledger, arrivals: arrivals, logger: logger)
        #expect(try await worker.recordNext() == nil, "an import under a live lease is not taken")
        // A chunk recorded without the lease (a worker that stalled past it) is refused and left as it was.
        let wrapped = try await database.withClient(\.superuser) { client throws in
            try await client.query("SELECT wrapped_key, master_key_id FROM imports").collect().first?.decode(
                (ByteBuffer, ByteBuffer).self)
        }
        let (key, keyId) = try #require(wrapped)
        let importKey = ImportKey(
            key: try store.keyring.unwrapImportKey(
                Array(key.readableBytesView), wrappedBy: Array(keyId.readableBytesView), importId: summary.id))
        let stale = ImportJob(
            id: summary.id, tenantId: tenant.id, channel: .whatsapp, noticeId: tenant.whatsappNotice,
            recordedBy: try #require(tenant.caller.keyId), actor: tenant.caller.actor, holder: ImportLease.holder)
        do {
            _ = try await store.commit(ledger.importNextChunk(of: stale, key: importKey), logger: logger)
            Issue.record("a chunk was recorded without the import's lease")
        } catch {
            #expect(DatabaseErrors.sqlState(error) == "CL020", "\(String(reflecting: error))")
        }
        #expect(try await database.count("SELECT count(*)::int8 FROM import_chunks") == 4)
        for table in ["import_rows", "consents", "subjects"] {
            #expect(try await database.count("SELECT count(*)::int8 FROM \(table)") == 0, "\(table)")
        }

        // Its lease runs out: the next pass takes the import over and records it to the end.
        try await Self.execute("UPDATE imports SET lease_until = now() - interval '1 second'", in: database)
        #expect(try await worker.recordNext() == summary.id)
        let done = try #require(
            try await store.imports(arrivals: arrivals).summary(summary.id, tenantId: tenant.id, logger: logger))
        #expect(done.status == .completed && done.rowsRecorded == 7 && done.counts[.granted] == 7)
        #expect(try await database.count("SELECT count(DISTINCT line)::int8 FROM import_rows") == 7)
        #expect(try await database.count("SELECT count(*)::int8 FROM import_rows") == 7)
        #expect(try await database.count("SELECT count(*)::int8 FROM consents") == 7)
        #expect(try await database.count("SELECT count(*)::int8 FROM import_chunks") == 0)
        #expect(
            try await database.count(
                "SELECT count(*)::int8 FROM audit_events WHERE action = 'import.batch_recorded'") == 4)
        #expect(try await database.count("SELECT count(*)::int8 FROM imports WHERE wrapped_key IS NULL") == 1)
    }

    /// A master-key rotation during an import re-wraps the import's key with the rest: after it, a server that has
    /// only the new master records the import's remaining chunks.
    @Test func aRotationReWrapsARunningImportsKey() async throws {
        let database = try await TestDatabase.fresh()
        let (old, new) = (SecretBytes.random32(), SecretBytes.random32())
        let (before, serving) = GroupedOptInTests.runningStore(database, keyring: TenantKeyring(masterKey: old))
        let tenant = try await GroupedOptInTests.tenant("rotating", database: database)
        let logger = database.logger
        let file =
            "subject,purposes,collectedAt\n"
            + (0..<5).map { "+39333610000\($0),marketing,2025-01-01T00:00:00Z\n" }.joined()
        let summary = try await before.imports(arrivals: ImportArrivals()).receive(
            Pieces(pieces: [file]),
            parameters: ImportParameters(
                channel: .whatsapp, noticeId: tenant.whatsappNotice, format: .csv, dryRun: false),
            recordedBy: try #require(tenant.caller.keyId), actor: tenant.caller.actor, tenantId: tenant.id,
            chunkLines: 2, logger: logger)
        serving.cancel()
        #expect(summary.status == .running)

        let both = TenantKeyring(masterKey: new, unwrapOnly: [old])
        let report = try await database.withClient(\.app) { client in
            try await MasterKeyRotation(client: client, keyring: both).run(logger: logger)
        }
        #expect(report.importKeys == 1 && report.unreadable == 0 && report.remaining == 0, "\(report)")

        let (after, running) = GroupedOptInTests.runningStore(database, keyring: TenantKeyring(masterKey: new))
        defer { running.cancel() }
        let arrivals = ImportArrivals()
        let worker = ImportWorker(
            database: after, ledger: ConsentLedger(keyring: after.keyring, suppression: true), arrivals: arrivals,
            logger: logger)
        #expect(try await worker.recordNext() == summary.id)
        let done = try #require(
            try await after.imports(arrivals: arrivals).summary(summary.id, tenantId: tenant.id, logger: logger))
        #expect(done.status == .completed && done.counts[.granted] == 5)
    }

    /// The same row for someone held, in two chunks recorded side by side: one records it, the other finds it.
    @Test func aHeldPersonsRowInTwoChunksAtOnceIsRecordedOnce() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await GroupedOptInTests.tenant("importer", database: database)
        let logger = database.logger
        let (store, serving) = GroupedOptInTests.runningStore(database)
        defer { serving.cancel() }
        let ledger = ConsentLedger(keyring: store.keyring, suppression: true)
        let person = try SubjectIdentifier("+393336100001", channel: .whatsapp)
        _ = try await store.commit(
            ledger.optIn(
                OptIn(
                    subject: person, purposes: ["shipping_update"], noticeId: tenant.whatsappNotice,
                    method: .checkbox, collectedAt: Date(),
                    provenance: Provenance(pageUrl: "https://shop.example/", userAgent: nil, ipAddress: nil)),
                caller: tenant.caller), logger: logger)
        let line = "+393336100001,marketing,2025-01-01T00:00:00Z\n"
        let file =
            "subject,purposes,collectedAt\n" + line + "+393336100002,marketing,2025-01-01T00:00:00Z\n" + line
            + "+393336100003,marketing,2025-01-01T00:00:00Z\n"
        let arrivals = ImportArrivals()
        let summary = try await store.imports(arrivals: arrivals).receive(
            Pieces(pieces: [file]),
            parameters: ImportParameters(
                channel: .whatsapp, noticeId: tenant.whatsappNotice, format: .csv, dryRun: false),
            recordedBy: try #require(tenant.caller.keyId), actor: tenant.caller.actor, tenantId: tenant.id,
            chunkLines: 2, logger: logger)
        let worker = ImportWorker(database: store, ledger: ledger, arrivals: arrivals, logger: logger)
        #expect(try await worker.recordNext() == summary.id)
        let done = try #require(
            try await store.imports(arrivals: arrivals).summary(summary.id, tenantId: tenant.id, logger: logger))
        #expect(done.counts[.granted] == 3 && done.counts[.duplicate] == 1, "\(done.counts)")
        // The person's checkout and one import of the row; no second collection from the other chunk.
        #expect(try await database.count("SELECT count(*)::int8 FROM collections WHERE method = 'import'") == 3)
    }

    @Test func anUploadWhoseInstanceDiedIsDeletedOnceItsLeaseRunsOut() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await GroupedOptInTests.tenant("importer", database: database)
        let logger = database.logger
        let (store, serving) = GroupedOptInTests.runningStore(database)
        defer { serving.cancel() }
        let arrivals = ImportArrivals()
        let summary = try await store.imports(arrivals: arrivals).receive(
            Pieces(pieces: ["subject,purposes,collectedAt\n+393336000001,marketing,2025-01-01T00:00:00Z\n"]),
            parameters: ImportParameters(
                channel: .whatsapp, noticeId: tenant.whatsappNotice, format: .csv, dryRun: false),
            recordedBy: try #require(tenant.caller.keyId), actor: tenant.caller.actor, tenantId: tenant.id,
            chunkLines: 2, logger: logger)
        // As if its instance had died while the file was still arriving.
        try await Self.execute(
            "UPDATE imports SET status = 'receiving', lease_holder = gen_random_uuid(), lease_until = now() + interval '1 hour'",
            in: database)
        let worker = ImportWorker(
            database: store, ledger: ConsentLedger(keyring: store.keyring, suppression: true), arrivals: arrivals,
            logger: logger)
        #expect(try await worker.recordNext() == nil)
        #expect(try await database.count("SELECT count(*)::int8 FROM imports") == 1, "its lease still runs")
        try await Self.execute("UPDATE imports SET lease_until = now() - interval '1 second'", in: database)
        #expect(try await worker.recordNext() == nil)
        #expect(try await database.count("SELECT count(*)::int8 FROM imports WHERE id = '\(summary.id)'") == 0)
        #expect(try await database.count("SELECT count(*)::int8 FROM import_chunks") == 0)
        #expect(try await database.count("SELECT count(*)::int8 FROM consents") == 0)
    }
}
