import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import Logging
import PostgresNIO
import Testing

let auditSigner = try! CheckpointSigner(
    seed: SecretBytes(Array(repeating: 0x11, count: 32)), originPrefix: "consentledger.test")

/// A tenant with `events` audit events beyond its creation, written as the runtime role writes them.
struct AuditFixture: Sendable {
    let database: TestDatabase
    let tenant: Tenant

    static func make(events: Int) async throws -> AuditFixture {
        let database = try await TestDatabase.fresh()
        let tenant = try await database.withClient(\.owner) { client throws in
            try await TenantStore(client: client).create(TenantName("acme")!, logger: database.logger)
        }
        let fixture = AuditFixture(database: database, tenant: tenant)
        try await fixture.append(events)
        return fixture
    }

    func append(_ count: Int, prefix: String = "e") async throws {
        guard count > 0 else { return }
        let (tenantId, logger) = (tenant.id, database.logger)
        try await database.withClient(\.app) { client throws in
            try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                try await AuditTrail.append(
                    (0..<count).map {
                        AuditEvent(
                            action: .purposeUpdated, actor: "key:test", subjectRef: UUID(),
                            data: [
                                "n": .int(Int64($0)), "label": .string("\(prefix)\($0)"),
                                "purposes": .strings(["marketing"]),
                            ])
                    }, tenantId: tenantId, on: connection, logger: logger)
            }
        }
    }

    @discardableResult
    func sequence() async throws -> Int {
        let logger = database.logger
        return try await database.withClient(\.app) { client throws in
            try await AuditSequencer(client: client, signer: auditSigner).sequenceAll(logger: logger)
        }
    }

    func verify(pinned: Bool = true) async throws -> AuditVerification {
        try await verify(trusting: pinned ? [auditSigner.publicKey] : [])
    }

    func verify(trusting keys: [[UInt8]]) async throws -> AuditVerification {
        let (tenant, logger) = (self.tenant, database.logger)
        return try await database.withClient(\.app) { client throws in
            try await AuditVerifier(client: client, trustedKeys: keys)
                .verify(tenantId: tenant.id, tenantName: tenant.name, logger: logger)
        }
    }

    @discardableResult
    func sequence(signer: CheckpointSigner) async throws -> Int {
        let logger = database.logger
        return try await database.withClient(\.app) { client throws in
            try await AuditSequencer(client: client, signer: signer).sequenceAll(logger: logger)
        }
    }

    /// SQL as a superuser with triggers (and foreign keys) switched off: what an attacker with the database can do.
    func tamper(_ sql: String) async throws {
        let logger = database.logger
        try await database.withClient(\.superuser) { client throws in
            try await client.withConnection { connection in
                try await connection.query("SET session_replication_role = replica", logger: logger)
                for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    try await connection.query(PostgresQuery(unsafeSQL: String(statement)), logger: logger)
                }
                try await connection.query("SET session_replication_role = origin", logger: logger)
            }
        }
    }

    var tenantSQL: String { "'\(tenant.id.lowercased)'" }
}

@Suite struct AuditSequencingTests {
    @Test func eventsGetGaplessSeqsLeafHashesAndASignedCheckpoint() async throws {
        let fixture = try await AuditFixture.make(events: 25)
        #expect(try await fixture.sequence() == 26)  // tenant.created + 25
        #expect(try await fixture.sequence() == 0)
        let logger = fixture.database.logger
        let tenant = fixture.tenant
        try await fixture.database.withClient(\.app) { client throws in
            let reader = AuditLogReader(client: client)
            let events = try await reader.events(tenantId: tenant.id, filter: .init(), limit: 1000, logger: logger)
            #expect(events.map(\.record.seq) == Array(0..<26))
            #expect(events.first?.record.action == "tenant.created")
            for event in events { #expect(try event.record.leafHash() == event.leafHash) }
            let checkpoint = try #require(try await reader.latestCheckpoint(tenantId: tenant.id, logger: logger))
            #expect(checkpoint.size == 26)
            #expect(checkpoint.rootHash == MerkleTree.root(events.map(\.leafHash)[...]))
            let verifier = try auditSigner.signer(for: "acme").verifier
            let signed = try Checkpoint(body: try verifier.open(checkpoint.note))
            #expect(signed == Checkpoint(origin: "consentledger.test/acme", size: 26, rootHash: checkpoint.rootHash))
            // Every proof the reader gives checks against the definitions.
            for event in events {
                let proof = try await reader.inclusionProof(
                    tenantId: tenant.id, seq: event.record.seq, treeSize: 26, logger: logger)
                #expect(
                    MerkleTree.verifyInclusion(
                        leafHash: event.leafHash, index: event.record.seq, size: 26, proof: proof,
                        root: checkpoint.rootHash))
            }
            await #expect(throws: AuditProofError.beyondTree(26)) {
                try await reader.inclusionProof(tenantId: tenant.id, seq: 0, treeSize: 27, logger: logger)
            }
        }
        let result = try await fixture.verify()
        #expect(result.ok, "\(result)")
        #expect(result.eventsChecked == 26 && result.checkpointsChecked == 1)
    }

    @Test func checkpointsAreConsistentAcrossBatchesAndAllKept() async throws {
        let fixture = try await AuditFixture.make(events: 3)
        try await fixture.sequence()
        var sizesSoFar: [Int64] = [4]
        for batch in [1, 7, 16, 33] {
            try await fixture.append(batch)
            try await fixture.sequence()
            sizesSoFar.append(sizesSoFar.last! + Int64(batch))
        }
        let logger = fixture.database.logger
        let tenant = fixture.tenant
        let sizes = sizesSoFar
        let stored = try await fixture.database.count(
            "SELECT count(*)::int8 FROM audit_checkpoints WHERE tenant_id = \(fixture.tenantSQL)")
        #expect(stored == sizes.count)
        try await fixture.database.withClient(\.app) { client throws in
            let reader = AuditLogReader(client: client)
            let all = try await reader.events(tenantId: tenant.id, filter: .init(), limit: 1000, logger: logger).map(
                \.leafHash)
            for (first, second) in zip(sizes, sizes.dropFirst()) {
                let proof = try await reader.consistencyProof(
                    tenantId: tenant.id, from: first, to: second, logger: logger)
                #expect(
                    MerkleTree.verifyConsistency(
                        firstSize: first, secondSize: second, firstRoot: MerkleTree.root(all[..<Int(first)]),
                        secondRoot: MerkleTree.root(all[..<Int(second)]), proof: proof))
            }
        }
        let result = try await fixture.verify()
        #expect(result.ok && result.checkpointsChecked == Int64(sizes.count), "\(result)")
    }

    @Test func largeBacklogsAreSequencedInBatchesThatVerifyAcrossPages() async throws {
        let fixture = try await AuditFixture.make(events: 0)
        for _ in 0..<5 { try await fixture.append(1000) }
        let logger = fixture.database.logger
        let sequenced = try await fixture.database.withClient(\.app) { client throws in
            try await AuditSequencer(client: client, signer: auditSigner, batchSize: 1200).sequenceAll(logger: logger)
        }
        #expect(sequenced == 5001)
        let (tenant, database) = (fixture.tenant, fixture.database)
        let result = try await database.withClient(\.app) { client throws in
            try await AuditVerifier(client: client, trustedKeys: [auditSigner.publicKey], pageSize: 700)
                .verify(tenantId: tenant.id, tenantName: tenant.name, logger: logger)
        }
        #expect(result.ok && result.eventsChecked == 5001 && result.checkpointsChecked == 5, "\(result)")
    }

    /// Runs `work`; a database error fails the test with its SQLSTATE and where it came from (the driver's own
    /// description hides both).
    static func naming(_ work: () async throws -> Void) async throws {
        do {
            try await work()
        } catch {
            Issue.record("\(DatabaseErrors.sqlState(error) ?? "no SQLSTATE"): \(String(reflecting: error).prefix(600))")
            throw error
        }
    }

    /// Eight writers commit events while two sequencers race each other (no leadership between them): every
    /// event ends up in the log exactly once, seq has no gaps, and there is one tree.
    @Test func racingSequencersAndConcurrentWritersNeitherGapNorFork() async throws {
        let fixture = try await AuditFixture.make(events: 0)
        let logger = fixture.database.logger
        try await Self.naming {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        for round in 0..<15 { try await fixture.append(3, prefix: "w\(writer)r\(round)-") }
                    }
                }
                for _ in 0..<2 {
                    group.addTask {
                        try await fixture.database.withClient(\.app) { client throws in
                            let sequencer = AuditSequencer(client: client, signer: auditSigner, batchSize: 10)
                            for _ in 0..<40 {
                                do {
                                    try await sequencer.sequenceAll(logger: logger)
                                } catch  where DatabaseErrors.sqlState(error) == "55P03" {
                                    // As designed: a pass gives up after waiting 5 s for the other's lock, changes
                                    // nothing, and the next one retries (a loaded machine makes a pass that slow).
                                }
                                try await Task.sleep(for: .milliseconds(5))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await fixture.sequence()
        let total = 1 + 8 * 15 * 3
        #expect(try await fixture.database.count("SELECT count(*)::int8 FROM audit_leaves") == total)
        #expect(try await fixture.database.count("SELECT count(DISTINCT event_id)::int8 FROM audit_leaves") == total)
        #expect(try await fixture.database.count("SELECT (max(seq) + 1)::int8 FROM audit_leaves") == total)
        #expect(try await fixture.database.count("SELECT count(*)::int8 FROM audit_unsequenced") == 0)
        let result = try await fixture.verify()
        #expect(result.ok && result.eventsChecked == Int64(total), "\(result)")
    }

    @Test func theDatabaseItselfRefusesGapsAndDuplicateSeqs() async throws {
        let fixture = try await AuditFixture.make(events: 2)
        try await fixture.sequence()
        let (tenant, logger) = (fixture.tenant, fixture.database.logger)
        try await fixture.database.withClient(\.app) { client throws in
            let eventId = try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await connection.query(
                    "INSERT INTO audit_events (tenant_id, action, actor) VALUES (\(tenant.id), 'purpose.updated', 'x') RETURNING id",
                    logger: logger
                )
                .collect().first!.decode(Int64.self)
            }
            for seq: Int64 in [5, 2, 0] {
                await #expect(throws: (any Error).self, "seq \(seq)") {
                    try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                        try await connection.query(
                            "INSERT INTO audit_leaves (tenant_id, seq, event_id) VALUES (\(tenant.id), \(seq), \(eventId))",
                            logger: logger)
                    }
                }
            }
            // 3 is the next seq; a checkpoint beyond the leaves is refused too.
            await #expect(throws: (any Error).self) {
                try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await connection.query(
                        """
                        INSERT INTO audit_checkpoints (tenant_id, tree_size, root_hash, origin, note, public_key)
                        VALUES (\(tenant.id), 9, \(ByteBuffer(repeating: 0, count: 32)), 'x/acme', 'n', \(ByteBuffer(repeating: 0, count: 32)))
                        """, logger: logger)
                }
            }
        }
    }

    @Test(arguments: [LeaderLock.auditSequencer, LeaderLock.retention])
    func oneInstanceLeadsAtATime(lock: LeaderLock) async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let other = lock == .auditSequencer ? LeaderLock.retention : .auditSequencer
        try await database.withClient(\.app) { first throws in
            try await database.withClient(\.app) { second throws in
                try await first.withConnection { a in
                    try await second.withConnection { b in
                        #expect(try await lock.tryAcquire(on: a, logger: logger))
                        #expect(try await !lock.tryAcquire(on: b, logger: logger))
                        // Each role is elected on its own: another instance may lead the other one.
                        #expect(try await other.tryAcquire(on: b, logger: logger))
                        try await other.release(on: b, logger: logger)
                        try await lock.release(on: a, logger: logger)
                        #expect(try await lock.tryAcquire(on: b, logger: logger))
                        #expect(try await !lock.tryAcquire(on: a, logger: logger))
                        try await lock.release(on: b, logger: logger)
                    }
                }
            }
        }
    }
}

@Suite struct AuditTamperTests {
    static func sequenced(_ events: Int = 40) async throws -> AuditFixture {
        let fixture = try await AuditFixture.make(events: events)
        try await fixture.sequence()
        #expect(try await fixture.verify().ok)
        return fixture
    }

    @Test func logTablesRejectUpdateDeleteAndTruncateEvenFromTheSuperuser() async throws {
        let fixture = try await Self.sequenced(3)
        try await fixture.database.withClient(\.superuser) { client throws in
            for table in ["audit_events", "audit_leaves", "audit_nodes", "audit_checkpoints"] {
                let column = [
                    "audit_events": "actor", "audit_leaves": "seq", "audit_nodes": "idx", "audit_checkpoints": "note",
                ][table]!
                let value = column == "actor" || column == "note" ? "'x'" : "\(column) + 1"
                for sql in [
                    "UPDATE \(table) SET \(column) = \(value)", "DELETE FROM \(table)", "TRUNCATE \(table) CASCADE",
                ] {
                    await #expect(throws: (any Error).self, "\(sql)") {
                        try await client.query(PostgresQuery(unsafeSQL: sql))
                    }
                }
            }
        }
        #expect(try await fixture.verify().ok)
    }

    /// One way an attacker with the database (triggers off) changes a sequenced log of 40 events, and the seq the
    /// verifier must name as the first bad one. Seq 0 is tenant.created, so event `eN` is seq N + 1.
    struct Tampering: Sendable, CustomTestStringConvertible {
        let name: String
        let sql: String
        let firstBadSeq: Int64
        /// A word the verifier's `problem` must contain, where the case says what kind of damage it is.
        let problem: String?

        init(_ name: String, _ sql: String, firstBadSeq: Int64, problem: String? = nil) {
            (self.name, self.sql, self.firstBadSeq, self.problem) = (name, sql, firstBadSeq, problem)
        }

        var testDescription: String { name }
    }

    static let tamperings: [Tampering] = [
        Tampering(
            "an event edited", "UPDATE audit_events SET data = data || '{\"n\": 999}' WHERE data->>'label' = 'e16'",
            firstBadSeq: 17),
        Tampering("an event deleted", "DELETE FROM audit_events WHERE data->>'label' = 'e30'", firstBadSeq: 31),
        Tampering("a leaf deleted, leaving a gap", "DELETE FROM audit_leaves WHERE seq = 9", firstBadSeq: 9),
        // The last 6 events and everything derived from them, but not the checkpoint that covers them.
        Tampering(
            "the tail cut below the latest checkpoint",
            """
            DELETE FROM audit_nodes WHERE ((idx + 1) << level) > 35;
            DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_leaves WHERE seq >= 35);
            DELETE FROM audit_leaves WHERE seq >= 35;
            """,
            firstBadSeq: 35, problem: "missing"),
        // Level 2, index 3 covers seqs 12 to 15.
        Tampering(
            "a subtree hash rewritten", "UPDATE audit_nodes SET hash = sha256(hash) WHERE level = 2 AND idx = 3",
            firstBadSeq: 12),
    ]

    @Test(arguments: tamperings)
    func aTamperingIsNamedByItsFirstBadSeq(_ tampering: Tampering) async throws {
        let fixture = try await Self.sequenced()
        try await fixture.tamper(tampering.sql)
        let result = try await fixture.verify()
        #expect(!result.ok, "\(result)")
        #expect(result.firstBadSeq == tampering.firstBadSeq, "\(result)")
        if let problem = tampering.problem {
            #expect(result.problem?.contains(problem) == true, "\(result)")
        }
    }

    @Test func aCheckpointWithAnotherRootOrABadSignatureFails() async throws {
        let fixture = try await Self.sequenced()
        try await fixture.tamper("UPDATE audit_checkpoints SET root_hash = sha256(root_hash)")
        #expect(try await !fixture.verify().ok)

        let forged = try await Self.sequenced()
        // Re-signed with another key: caught when the verifier pins the service's key.
        let other = try CheckpointSigner(
            seed: SecretBytes(Array(repeating: 0x22, count: 32)), originPrefix: "consentledger.test")
        let note = try other.sign(tenant: "acme", size: 41, rootHash: MerkleTree.emptyRoot)
        try await forged.tamper(
            """
            UPDATE audit_checkpoints SET note = '\(note)', root_hash = '\\x\(MerkleTree.emptyRoot.hexString)',
                public_key = '\\x\(other.publicKey.hexString)'
            """)
        let pinned = try await forged.verify(pinned: true)
        #expect(!pinned.ok && pinned.problem?.contains("signed") == true, "\(pinned)")
    }

    /// Issue 21, finding 8: after a rotation every verification failed, the older checkpoints being checked against
    /// the current key. Each is now checked against the key recorded with it, which must be one of those given.
    @Test func aLogSignedByARetiredKeyAndThenTheCurrentOneVerifiesWithBoth() async throws {
        let fixture = try await AuditFixture.make(events: 10)
        try await fixture.sequence()
        let current = try CheckpointSigner(
            seed: SecretBytes(Array(repeating: 0x33, count: 32)), originPrefix: "consentledger.test")
        try await fixture.append(7, prefix: "after")
        try await fixture.sequence(signer: current)

        let both = try await fixture.verify(trusting: [current.publicKey, auditSigner.publicKey])
        #expect(both.ok && both.checkpointsChecked >= 2 && both.eventsChecked == 18, "\(both)")
        #expect(both.signingKeys == [auditSigner.publicKey, current.publicKey])
        #expect(try await fixture.verify(trusting: []).ok, "the recorded keys, unpinned")

        let currentOnly = try await fixture.verify(trusting: [current.publicKey])
        #expect(!currentOnly.ok && currentOnly.problem?.contains("not among the keys given") == true, "\(currentOnly)")
        let retiredOnly = try await fixture.verify(trusting: [auditSigner.publicKey])
        #expect(!retiredOnly.ok, "the newer checkpoints are not signed by the retired key")

        // A retired key given does not let an old checkpoint be replaced by one signed with some other key.
        let stranger = try CheckpointSigner(
            seed: SecretBytes(Array(repeating: 0x44, count: 32)), originPrefix: "consentledger.test")
        let first = try await fixture.database.count(
            "SELECT min(tree_size)::int8 FROM audit_checkpoints WHERE tree_size > 0")
        let note = try stranger.sign(tenant: "acme", size: Int64(first), rootHash: MerkleTree.emptyRoot)
        try await fixture.tamper(
            """
            UPDATE audit_checkpoints SET public_key = '\\x\(stranger.publicKey.hexString)', note = '\(note)'
            WHERE tree_size = \(first)
            """)
        let swapped = try await fixture.verify(trusting: [current.publicKey, auditSigner.publicKey])
        #expect(!swapped.ok && swapped.firstBadSeq == Int64(first), "\(swapped)")
    }

    @Test func anEventRemovedFromTheQueueBeforeSequencingIsReported() async throws {
        let fixture = try await Self.sequenced(2)
        try await fixture.append(1, prefix: "hidden")
        try await fixture.database.withClient(\.app) { client throws in
            try await client.withTenantTransaction(fixture.tenant.id, logger: fixture.database.logger) { connection in
                try await connection.query("DELETE FROM audit_unsequenced", logger: fixture.database.logger)
            }
        }
        try await fixture.sequence()
        let result = try await fixture.verify()
        #expect(!result.ok && result.problem?.contains("neither") == true, "\(result)")
    }
}
