import ConsentCore
import ConsentTesting
import Crypto
import Foundation
import PostgresNIO
import Testing

@testable import ConsentStore

/// A tenant with a notice and a write key, driven through the store as the server drives it, as the runtime role.
struct RightsFixture: Sendable {
    let database: TestDatabase
    let tenantId: UUID
    let caller: CallerIdentity
    let noticeId: UUID

    static func make(_ name: String = "acme", in existing: TestDatabase? = nil) async throws -> RightsFixture {
        let database = if let existing { existing } else { try await TestDatabase.fresh() }
        let logger = database.logger
        let (tenant, key) = try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName(name)!, logger: logger)
            let key = try await APIKeyStore(client: client).create(
                tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin], label: "", logger: logger)
            return (tenant, key)
        }
        let caller = CallerIdentity(keyId: key.record.id, tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin])
        let notice = try await database.withClient(\.app) { client throws in
            try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                try await NoticeStore.create(
                    tenantId: tenant.id, channel: .whatsapp, language: "en", text: "Updates and offers?",
                    purposes: ["shipping_update", "marketing"], actor: caller, on: connection, logger: logger)
            }
        }
        return RightsFixture(database: database, tenantId: tenant.id, caller: caller, noticeId: notice.id)
    }

    func optIn(
        _ phone: String, purposes: [String] = ["shipping_update"], method: CollectionMethod = .checkbox,
        keyring: TenantKeyring, client: PostgresClient
    ) async throws {
        let subject = try SubjectIdentifier(phone, channel: .whatsapp)
        let index = try await keyring.blindIndex(subject, tenantId: tenantId, client: client, logger: database.logger)
        _ = try await client.withTenantTransaction(tenantId, logger: database.logger) { connection in
            try await ConsentLedger.recordOptIn(
                OptIn(
                    subject: subject, purposes: purposes, noticeId: noticeId, method: method, collectedAt: Date(),
                    provenance: Provenance(pageUrl: "https://shop.example/p", userAgent: "UA", ipAddress: "203.0.113.9")
                ),
                blindIndex: index, tenantId: tenantId, caller: caller, keyring: keyring, on: connection,
                logger: database.logger)
        }
    }

    func interaction(
        _ phone: String, at time: Date = Date(), text: String = "hello", keyring: TenantKeyring, client: PostgresClient
    ) async throws {
        let subject = try SubjectIdentifier(phone, channel: .whatsapp)
        let index = try await keyring.blindIndex(subject, tenantId: tenantId, client: client, logger: database.logger)
        _ = try await client.withTenantTransaction(tenantId, logger: database.logger) { connection in
            try await ConsentLedger.recordInteraction(
                from: subject, blindIndex: index, occurredAt: time, text: text, tenantId: tenantId, caller: caller,
                keyring: keyring, on: connection, logger: database.logger)
        }
    }

    func revoke(_ phone: String, purposes: [String]?, keyring: TenantKeyring, client: PostgresClient) async throws {
        let subject = try SubjectIdentifier(phone, channel: .whatsapp)
        let index = try await keyring.blindIndex(subject, tenantId: tenantId, client: client, logger: database.logger)
        _ = try await client.withTenantTransaction(tenantId, logger: database.logger) { connection in
            try await ConsentLedger.revoke(
                subject: index, channel: .whatsapp, purposes: purposes, source: .api, tenantId: tenantId,
                caller: caller,
                on: connection, logger: database.logger)
        }
    }

    func erase(_ phone: String, keyring: TenantKeyring, client: PostgresClient) async throws -> ErasureResult {
        let subject = try SubjectIdentifier(phone, channel: .whatsapp)
        let index = try await keyring.blindIndex(subject, tenantId: tenantId, client: client, logger: database.logger)
        return try await client.withTenantTransaction(tenantId, logger: database.logger) { connection in
            try await SubjectErasure.erase(
                subject, blindIndex: index, objection: false, tenantId: tenantId, caller: caller, keyring: keyring,
                suppression: true, on: connection, logger: database.logger)
        }
    }

    func bytes(_ sql: String) async throws -> [[UInt8]] {
        try await database.withClient(\.superuser) { client in
            try await client.query(PostgresQuery(unsafeSQL: sql)).collect().map {
                Array(try $0.decode(ByteBuffer.self).readableBytesView)
            }
        }
    }
}

@Suite struct ErasureRaceTests {
    /// A write refused as busy (the runtime role's lock or statement timeout, which a whole-suite run on two cores
    /// can reach) wrote nothing and is what a client retries, as the API's 503 `database_busy` tells it to.
    static func retriedWhileBusy<Result: Sendable>(_ write: () async throws -> Result) async throws -> Result {
        for _ in 0..<4 {
            do {
                return try await write()
            } catch  where DatabaseErrors.isBusy(error) {
                continue
            }
        }
        return try await write()
    }

    /// Erasures racing opt-ins and inbound messages for the same person, many times over: whatever the order,
    /// every subject ends either whole (key, index, readable data) or erased (no key, no index, no ciphertext,
    /// no active consent). Never half of each.
    @Test func erasureRacingWritesForTheSamePersonLeavesNoHalfErasedSubject() async throws {
        let fixture = try await RightsFixture.make()
        let keyring = TenantKeyring(masterKey: .random32())
        try await fixture.database.withClient(\.app) { client in
            for round in 0..<20 {
                let phone = "+3933300\(String(format: "%05d", round))"
                try await fixture.optIn(phone, keyring: keyring, client: client)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        _ = try await Self.retriedWhileBusy {
                            try await fixture.erase(phone, keyring: keyring, client: client)
                        }
                    }
                    group.addTask {
                        try await Self.retriedWhileBusy {
                            try await fixture.optIn(phone, purposes: ["marketing"], keyring: keyring, client: client)
                        }
                    }
                    group.addTask {
                        try await Self.retriedWhileBusy {
                            try await fixture.interaction(phone, keyring: keyring, client: client)
                        }
                    }
                    group.addTask {
                        try await Self.retriedWhileBusy {
                            try await fixture.optIn(
                                phone, purposes: ["shipping_update", "marketing"], keyring: keyring, client: client)
                        }
                    }
                    do {
                        try await group.waitForAll()
                    } catch {
                        // PSQLError's description hides the server's answer; the SQLSTATE says which race lost.
                        Issue.record("round \(round): \(String(reflecting: error))")
                        throw error
                    }
                }
            }
        }
        let db = fixture.database
        #expect(
            try await db.count("SELECT count(*)::int8 FROM subjects WHERE erased_at IS NOT NULL") == 20,
            "each round erased one subject")
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM subjects s WHERE s.erased_at IS NOT NULL AND (s.blind_index IS NOT NULL OR s.identifier_ciphertext IS NOT NULL OR s.last_inbound_at IS NOT NULL OR EXISTS (SELECT 1 FROM subject_keys k WHERE k.subject_id = s.id))"
            ) == 0)
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM consents c JOIN subjects s ON s.id = c.subject_id WHERE s.erased_at IS NOT NULL AND c.status <> 'withdrawn'"
            ) == 0)
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM collections k JOIN subjects s ON s.id = k.subject_id WHERE s.erased_at IS NOT NULL AND k.provenance_ciphertext IS NOT NULL"
            ) == 0)
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM interactions i JOIN subjects s ON s.id = i.subject_id WHERE s.erased_at IS NOT NULL"
            ) == 0)
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM subjects s WHERE s.erased_at IS NULL AND NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.subject_id = s.id)"
            ) == 0)
        // Writes that lost the race made a new subject for the person, whole and readable.
        #expect(try await db.count("SELECT count(*)::int8 FROM subjects WHERE erased_at IS NULL") <= 20)
        #expect(try await db.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'subject.erased'") == 20)
    }
}

@Suite struct MasterKeyRotationTests {
    @Test func rotationRewrapsEveryKeyWithoutTouchingCiphertexts() async throws {
        let fixture = try await RightsFixture.make()
        let globex = try await RightsFixture.make("globex", in: fixture.database)
        let old = SecretBytes.random32()
        let new = SecretBytes.random32()
        let before = TenantKeyring(masterKey: old)
        try await fixture.database.withClient(\.app) { client in
            for n in 0..<5 { try await fixture.optIn("+39333111000\(n)", keyring: before, client: client) }
            try await globex.optIn("+393331110000", keyring: before, client: client)
            try await fixture.interaction("+393331110001", keyring: before, client: client)
            // Each tenant's suppression key exists too: every opt-in looks its person up (issue 20).
            try await fixture.revoke("+393331110004", purposes: nil, keyring: before, client: client)
            _ = try await fixture.erase("+393331110004", keyring: before, client: client)
        }
        // A key from before master ids were stored.
        try await fixture.database.withClient(\.superuser) { client in
            _ = try await client.query(
                "UPDATE subject_keys SET master_key_id = NULL WHERE subject_id = (SELECT subject_id FROM subject_keys ORDER BY subject_id LIMIT 1)"
            ).collect()
        }
        let ciphertexts = """
            SELECT x FROM (SELECT identifier_ciphertext AS x FROM subjects UNION ALL SELECT provenance_ciphertext FROM collections
                           UNION ALL SELECT text_ciphertext FROM interactions) t WHERE x IS NOT NULL ORDER BY x
            """
        let sealedBefore = try await fixture.bytes(ciphertexts)
        let wrappedBefore = try await fixture.bytes(
            "SELECT wrapped_key FROM subject_keys UNION ALL SELECT wrapped_key FROM tenant_keys")
        // Identifiers of 4 live subjects and globex's 1, their 5 collections' provenance, and the one message.
        #expect(sealedBefore.count == 11)

        // Servers already run with both keys: writes go on during and after the rotation.
        let both = TenantKeyring(masterKey: new, unwrapOnly: [old])
        let report = try await fixture.database.withClient(\.app) { client in
            try await fixture.optIn("+393331110001", purposes: ["marketing"], keyring: both, client: client)
            let report = try await MasterKeyRotation(client: client, keyring: both, batchSize: 2).run(
                logger: fixture.database.logger)
            try await fixture.optIn("+393331110002", purposes: ["marketing"], keyring: both, client: client)
            return report
        }
        #expect(
            report.subjectKeys == 5 && report.tenantKeys == 4 && report.unreadable == 0 && report.remaining == 0,
            "\(report)")
        #expect(
            try await fixture.database.count(
                "SELECT count(*)::int8 FROM subject_keys WHERE master_key_id IS DISTINCT FROM '\\x\(both.masterKeyId)'::bytea"
            ) == 0)
        #expect(
            try await fixture.database.count(
                "SELECT count(*)::int8 FROM tenant_keys WHERE master_key_id IS DISTINCT FROM '\\x\(both.masterKeyId)'::bytea"
            ) == 0)
        let sealedAfter = try await fixture.bytes(ciphertexts)
        #expect(Set(sealedBefore).isSubset(of: Set(sealedAfter)), "no ciphertext was rewritten")
        #expect(
            Set(wrappedBefore).isDisjoint(
                with: Set(
                    try await fixture.bytes(
                        "SELECT wrapped_key FROM subject_keys UNION ALL SELECT wrapped_key FROM tenant_keys"))))

        // The old key can be retired: the new one alone reads everything; the old one alone reads nothing.
        let retired = TenantKeyring(masterKey: new)
        let oldOnly = TenantKeyring(masterKey: old)
        try await fixture.database.withClient(\.app) { client in
            #expect(
                try await retired.blindIndex(
                    try SubjectIdentifier("+393331110000", channel: .whatsapp), tenantId: fixture.tenantId,
                    client: client, logger: fixture.database.logger)
                    == before.blindIndex(
                        try SubjectIdentifier("+393331110000", channel: .whatsapp), tenantId: fixture.tenantId,
                        client: client, logger: fixture.database.logger))
            let readable = try await client.withTenantTransaction(fixture.tenantId, logger: fixture.database.logger) {
                connection in
                var identifiers: [String] = []
                let rows = try await connection.query(
                    "SELECT id, identifier_ciphertext FROM subjects WHERE erased_at IS NULL",
                    logger: fixture.database.logger)
                for (id, sealed) in try await rows.decode((UUID, ByteBuffer).self).array() {
                    let handle = try await SubjectDirectory.open(
                        id, keyring: retired, on: connection, logger: fixture.database.logger)
                    identifiers.append(
                        String(
                            decoding: try handle.open(Array(sealed.readableBytesView), context: "identifier"),
                            as: UTF8.self))
                    await #expect(throws: TenantKeyring.KeyUnreadable.self) {
                        _ = try await SubjectDirectory.open(
                            id, keyring: oldOnly, on: connection, logger: fixture.database.logger)
                    }
                }
                return identifiers.sorted()
            }
            #expect(readable == (0..<4).map { "+39333111000\($0)" })
            try await fixture.optIn("+393331110003", purposes: ["marketing"], keyring: retired, client: client)
            await #expect(throws: TenantKeyring.KeyUnreadable.self) {
                _ = try await oldOnly.blindIndexKey(
                    tenantId: globex.tenantId, client: client, logger: fixture.database.logger)
            }
            // Running again finds nothing to do; a run without the key that wrapped the stored keys says so.
            let again = try await MasterKeyRotation(client: client, keyring: both).run(logger: fixture.database.logger)
            #expect(again == RotationReport())
            let lost = try await MasterKeyRotation(
                client: client, keyring: TenantKeyring(masterKey: .random32(), unwrapOnly: [old])
            )
            .run(logger: fixture.database.logger)
            #expect(lost.subjectKeys == 0 && lost.unreadable == 9 && lost.remaining == 9, "\(lost)")
        }
    }
}

@Suite struct RetentionTests {
    @Test func purgesOldInteractionsOldWithdrawnProvenanceAndReplayRecordsAndAuditsCountsOnly() async throws {
        let fixture = try await RightsFixture.make()
        let keyring = TenantKeyring(masterKey: .random32())
        let logger = fixture.database.logger
        let db = fixture.database
        try await db.withClient(\.app) { client in
            // Anna keeps shipping updates and withdraws marketing (one collection supports both); Bruno withdraws all.
            try await fixture.optIn(
                "+393330000001", purposes: ["shipping_update", "marketing"], keyring: keyring, client: client)
            try await fixture.optIn("+393330000002", purposes: ["marketing"], keyring: keyring, client: client)
            try await fixture.revoke("+393330000001", purposes: ["marketing"], keyring: keyring, client: client)
            try await fixture.revoke("+393330000002", purposes: nil, keyring: keyring, client: client)
            try await fixture.interaction(
                "+393330000001", at: Date().addingTimeInterval(-100 * 86_400), keyring: keyring, client: client)
            try await fixture.interaction(
                "+393330000001", at: Date().addingTimeInterval(-10 * 86_400), keyring: keyring, client: client)
        }
        try await db.withClient(\.superuser) { client in
            _ = try await client.query(
                """
                INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, status, response, created_at)
                VALUES (\(fixture.tenantId), 'old', 'POST /v1/consents', \(ByteBuffer(repeating: 1, count: 32)), 201, '\\x7b7d', now() - interval '8 days'),
                       (\(fixture.tenantId), 'new', 'POST /v1/consents', \(ByteBuffer(repeating: 2, count: 32)), 201, '\\x7b7d', now())
                """
            ).collect()
        }

        let purger = { @Sendable (client: PostgresClient) in RetentionPurger(client: client, policy: .default) }
        let today = try await db.withClient(\.app) { client in try await purger(client).purgeAll(logger: logger) }
        #expect(today.interactions == 1 && today.provenance == 0 && today.idempotencyRecords == 1, "\(today)")
        #expect(try await db.count("SELECT count(*)::int8 FROM interactions") == 1)
        #expect(try await db.count("SELECT count(*)::int8 FROM idempotency_keys") == 1)

        // Three years and a day after the withdrawals: Bruno's proof goes; Anna's stays, it still backs a consent.
        let later = Date().addingTimeInterval((3 * 365 + 2) * 86_400)
        let then = try await db.withClient(\.app) { client in
            try await purger(client).purge(tenantId: fixture.tenantId, now: later, logger: logger)
        }
        #expect(then.provenance == 1 && then.interactions == 1, "\(then)")
        #expect(try await db.count("SELECT count(*)::int8 FROM collections WHERE provenance_ciphertext IS NULL") == 1)
        #expect(
            try await db.count(
                "SELECT count(*)::int8 FROM collections k JOIN consents c ON c.subject_id = k.subject_id WHERE k.provenance_ciphertext IS NULL AND c.status <> 'withdrawn'"
            ) == 0)
        #expect(
            try await db.count("SELECT count(*)::int8 FROM consents") == 3,
            "consents and their history are not retention's to delete")

        let events = try await db.withClient(\.superuser) { client in
            try await client.query(
                "SELECT actor, data::text FROM audit_events WHERE action = 'retention.purged' ORDER BY id"
            )
            .collect().map { try $0.decode((String, String).self) }
        }
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0.0 == "system:retention" })
        #expect(
            events[0].1.contains("\"interactionsDeleted\": 1")
                && events[0].1.contains("\"idempotencyRecordsDeleted\": 1"))
        #expect(!events.contains { $0.1.contains("3330000") }, "counts and cut-offs only")
        // Nothing left to purge: no event.
        _ = try await db.withClient(\.app) { client in
            try await purger(client).purge(tenantId: fixture.tenantId, now: later, logger: logger)
        }
        #expect(try await db.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'retention.purged'") == 2)
    }
}
