import ConsentCore
import ConsentTesting
import Crypto
import Foundation
import PostgresNIO
import Testing

@testable import ConsentStore

/// E-mail subjects stored under the earlier normalisation (the local part as typed) are moved to today's blind
/// index, and two that turn out to be one person become one subject without losing any of its history.
@Suite struct SubjectReindexTests {
    /// A tenant with an e-mail notice and a key, written through the ledger as the runtime role, as the server does.
    struct Fixture {
        let database: TestDatabase
        let keyring: TenantKeyring
        let tenantId: UUID
        let caller: CallerIdentity
        let noticeId: UUID

        static func make() async throws -> Fixture {
            let database = try await TestDatabase.fresh()
            let logger = database.logger
            let (tenant, key) = try await database.withClient(\.owner) { client throws in
                let tenant = try await TenantStore(client: client).create(TenantName("acme")!, logger: logger)
                let key = try await APIKeyStore(client: client).create(
                    tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin], label: "", logger: logger)
                return (tenant, key)
            }
            let caller = CallerIdentity(
                keyId: key.record.id, tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin])
            let notice = try await database.withClient(\.app) { client throws in
                try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                    try await NoticeStore.create(
                        tenantId: tenant.id, channel: .email, language: "en", text: "News and shipping updates?",
                        purposes: ["marketing", "shipping_update"], actor: caller, on: connection, logger: logger)
                }
            }
            return Fixture(
                database: database, keyring: TenantKeyring(masterKey: .random32()), tenantId: tenant.id,
                caller: caller, noticeId: notice.id)
        }

        var logger: Logger { database.logger }

        func blindIndex(_ subject: SubjectIdentifier) async throws -> [UInt8] {
            try await database.withClient(\.app) { client in
                try await keyring.blindIndex(subject, tenantId: tenantId, client: client, logger: logger)
            }
        }

        @discardableResult
        func optIn(_ address: String, _ purposes: [String], collectedAt: Date) async throws -> UUID {
            let subject = try SubjectIdentifier(address, channel: .email)
            let index = try await blindIndex(subject)
            try await database.withClient(\.app) { client in
                _ = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await ConsentLedger.recordOptIn(
                        OptIn(
                            subject: subject, purposes: purposes, noticeId: noticeId, method: .checkbox,
                            collectedAt: collectedAt,
                            provenance: Provenance(
                                pageUrl: "https://shop.example/signup", userAgent: "UA/1", ipAddress: "203.0.113.9")),
                        blindIndex: index, tenantId: tenantId, caller: caller, keyring: keyring, on: connection,
                        logger: logger)
                }
            }
            return try #require(try await subjectId(index))
        }

        func withdraw(_ address: String, _ purposes: [String]) async throws {
            let index = try await blindIndex(try SubjectIdentifier(address, channel: .email))
            try await database.withClient(\.app) { client in
                _ = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await ConsentLedger.revoke(
                        subject: index, channel: .email, purposes: purposes, source: .api, tenantId: tenantId,
                        caller: caller, on: connection, logger: logger)
                }
            }
        }

        func message(_ address: String, text: String) async throws {
            let subject = try SubjectIdentifier(address, channel: .email)
            let index = try await blindIndex(subject)
            try await database.withClient(\.app) { client in
                _ = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await ConsentLedger.recordInteraction(
                        from: subject, blindIndex: index, occurredAt: Date(), text: text, tenantId: tenantId,
                        caller: caller, keyring: keyring, on: connection, logger: logger)
                }
            }
        }

        func subjectId(_ blindIndex: [UInt8]) async throws -> UUID? {
            try await database.withClient(\.app) { client in
                try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await SubjectDirectory.find(
                        blindIndex: blindIndex, channel: .email, on: connection, logger: logger)
                }
            }
        }

        /// What the earlier build stored for `address`: the identifier as it normalised it (the local part as
        /// typed) sealed under the subject's own key, and the blind index of that form. Written as the superuser
        /// over a subject the ledger made under another address.
        @discardableResult
        func makeEarlierBuildSubject(_ subjectId: UUID, storedAs address: String) async throws -> [UInt8] {
            let earlier = SubjectIdentifier(storedByEarlierBuild: address, channel: .email)
            let key = try await database.withClient(\.app) { client in
                try await keyring.blindIndexKey(tenantId: tenantId, client: client, logger: logger)
            }
            let index = BlindIndex.compute(earlier, key: key)
            try await database.withClient(\.superuser) { client in
                let wrapped = try #require(
                    try await client.query("SELECT wrapped_key FROM subject_keys WHERE subject_id = \(subjectId)")
                        .collect().first?.decode(ByteBuffer.self))
                let handle = SubjectHandle(
                    id: subjectId,
                    dataKey: try keyring.unwrapSubjectKey(Array(wrapped.readableBytesView), subjectId: subjectId))
                let sealed = handle.seal(Array(address.utf8), context: "identifier")
                try await client.query(
                    """
                    UPDATE subjects SET identifier_ciphertext = \(ByteBuffer(bytes: sealed)),
                                        blind_index = \(ByteBuffer(bytes: index))
                    WHERE id = \(subjectId)
                    """)
            }
            return index
        }

        func reindex() async throws -> ReindexReport {
            // As `consentd migrate` runs it: the owner.
            try await database.withClient(\.owner) { client in
                try await SubjectReindexer(client: client, keyring: keyring).run(logger: logger)
            }
        }

        func states(_ addresses: [String], purpose: String) async throws -> CheckFacts {
            let subjects = try addresses.map { try SubjectIdentifier($0, channel: .email) }
            return try await database.withClient(\.app) { client in
                try await ConsentLookup(client: client, keyring: keyring).facts(
                    of: subjects, channel: .email, purpose: purpose, tenantId: tenantId, logger: logger)
            }
        }

        func allowed(_ address: String, purpose: String) async throws -> Bool {
            let facts = try await states([address], purpose: purpose)
            let state = facts.states[0]
            let question = try SendQuestion(
                channel: .email, messageType: .template, purpose: purpose, purposeCategory: facts.purposeCategory,
                at: Date())
            return ConsentCheck.decide(
                question,
                facts: state?.facts
                    ?? SubjectFacts(
                        consent: .none, lastInboundAt: nil, entryPointAt: nil, marketingStoppedAt: nil,
                        consentCollectedAt: nil)
            ).allowed
        }

        func count(_ sql: String) async throws -> Int { try await database.count(sql) }
    }

    @Test func subjectsOfOnePersonAreMergedWithTheirHistory() async throws {
        let fixture = try await Fixture.make()
        let now = Date()

        // The survivor: already in today's form, as the earlier build also stored it.
        let survivor = try await fixture.optIn(
            "anna@x.it", ["marketing", "shipping_update"], collectedAt: now.addingTimeInterval(-7200))
        // The duplicate: made under a stand-in address, then turned into what the earlier build stored for
        // `Anna@x.it`. It opted in later, wrote a message, and withdrew marketing after the survivor's opt-in.
        let duplicate = try await fixture.optIn(
            "anna.duplicate@x.it", ["marketing", "shipping_update"], collectedAt: now.addingTimeInterval(-1800))
        try await fixture.message("anna.duplicate@x.it", text: "please keep me posted")
        try await fixture.withdraw("anna.duplicate@x.it", ["marketing"])
        let duplicateIndex = try await fixture.makeEarlierBuildSubject(duplicate, storedAs: "Anna@x.it")
        // Someone with no today's-form twin: only re-indexed.
        let bob = try await fixture.optIn("bob.stand-in@x.it", ["marketing"], collectedAt: now.addingTimeInterval(-600))
        try await fixture.makeEarlierBuildSubject(bob, storedAs: "Bob@X.it")
        // The duplicate's objection, kept on the suppression list under the earlier form.
        let suppressionKey = try await fixture.database.withClient(\.app) { client in
            try await client.withTenantTransaction(fixture.tenantId, logger: fixture.logger) { connection in
                try await fixture.keyring.tenantKey(
                    .suppression, tenantId: fixture.tenantId, on: connection, logger: fixture.logger)
            }
        }
        let oldSuppression = SuppressionHash.compute(
            SubjectIdentifier(storedByEarlierBuild: "Anna@x.it", channel: .email), key: suppressionKey)
        let newSuppression = SuppressionHash.compute(
            try SubjectIdentifier("anna@x.it", channel: .email), key: suppressionKey)
        try await fixture.database.withClient(\.superuser) { client in
            _ = try await client.query(
                """
                INSERT INTO suppressions (tenant_id, keyed_hash, reason, scope, stopped_at)
                VALUES (\(fixture.tenantId), \(ByteBuffer(bytes: oldSuppression)), 'objected', 'marketing', now())
                """)
            // An idempotency record of the duplicate's, tied to it by its earlier index.
            _ = try await client.query(
                """
                INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash, status, response, subject_refs)
                VALUES (\(fixture.tenantId), 'dup-1', 'POST /v1/revocations', \(ByteBuffer(repeating: 7, count: 32)),
                        200, '\\x7b7d', ARRAY[\(ByteBuffer(bytes: duplicateIndex))]::bytea[])
                """)
        }

        // The finding: a withdrawal under `Anna@x.it` does not stop a check of `anna@x.it`.
        #expect(try await fixture.allowed("anna@x.it", purpose: "marketing"))
        #expect(try await fixture.allowed("Anna@x.it", purpose: "marketing"))  // today's form finds the survivor
        #expect(try await fixture.states(["bob@x.it"], purpose: "marketing").states[0] == nil)

        let both = "('\(survivor.lowercased)', '\(duplicate.lowercased)')"
        let consentsBefore = try await fixture.count("SELECT count(*)::int FROM consents WHERE subject_id IN \(both)")
        let collectionsBefore = try await fixture.count(
            "SELECT count(*)::int FROM collections WHERE subject_id IN \(both)")
        let stopsBefore = try await fixture.count(
            "SELECT count(*)::int FROM consent_stops WHERE subject_id IN \(both)")
        let evidenceBefore = try await fixture.count("SELECT count(*)::int FROM consent_evidence")
        let duplicateEvents = try await fixture.count(
            "SELECT count(*)::int FROM audit_events WHERE subject_ref = '\(duplicate.lowercased)'")
        let eventsBefore = try await fixture.count("SELECT count(*)::int FROM audit_events")
        #expect(consentsBefore == 4 && collectionsBefore == 2 && stopsBefore == 1 && duplicateEvents >= 3)

        let report = try await fixture.reindex()
        #expect(report == ReindexReport(reindexed: 1, merged: 1))

        // One subject for Anna, the survivor; the duplicate's row and data key are gone, and nothing else.
        #expect(try await fixture.count("SELECT count(*)::int FROM subjects WHERE channel = 'email'") == 2)
        #expect(try await fixture.count("SELECT count(*)::int FROM subjects WHERE id = '\(duplicate.lowercased)'") == 0)
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM subject_keys WHERE subject_id = '\(duplicate.lowercased)'")
                == 0)
        let annaIndex = try await fixture.blindIndex(try SubjectIdentifier("ANNA@x.it", channel: .email))
        #expect(try await fixture.subjectId(annaIndex) == survivor)

        // Every row of the history is there, under the survivor.
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM consents WHERE subject_id = '\(survivor.lowercased)'") == consentsBefore)
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM collections WHERE subject_id = '\(survivor.lowercased)'")
                == collectionsBefore)
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM consent_stops WHERE subject_id = '\(survivor.lowercased)'") == stopsBefore)
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM interactions WHERE subject_id = '\(survivor.lowercased)'") == 1)
        #expect(try await fixture.count("SELECT count(*)::int FROM consent_evidence") == evidenceBefore)
        // Audit events are evidence: the duplicate's keep its reference, which the merge event names.
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM audit_events WHERE subject_ref = '\(duplicate.lowercased)'")
                == duplicateEvents)
        #expect(
            try await fixture.count(
                """
                SELECT count(*)::int FROM audit_events
                WHERE action = 'subject.merged' AND subject_ref = '\(survivor.lowercased)'
                  AND data->>'mergedSubjectRef' = '\(duplicate.lowercased)' AND (data->>'consentsMoved')::int = 2
                """) == 1)

        // The duplicate's withdrawal of marketing came after the survivor's opt-in: it stops it. Both had shipping
        // updates in force: the newer (the duplicate's) stays, the older is kept as superseded.
        let survivorConsents = "FROM consents WHERE subject_id = '\(survivor.lowercased)'"
        #expect(
            try await fixture.count(
                "SELECT count(*)::int \(survivorConsents) AND purpose = 'marketing' AND status = 'withdrawn'") == 2)
        #expect(
            try await fixture.count("SELECT count(*)::int \(survivorConsents) AND status IN ('granted', 'pending')")
                == 1)
        #expect(try await fixture.count("SELECT count(*)::int \(survivorConsents) AND status = 'superseded'") == 1)
        #expect(
            try await fixture.count(
                """
                SELECT count(*)::int FROM audit_events
                WHERE subject_ref = '\(survivor.lowercased)' AND data->>'mergedSubjectRef' = '\(duplicate.lowercased)'
                  AND action IN ('consent.withdrawn', 'consent.superseded')
                """) == 2)
        #expect(try await fixture.count("SELECT count(*)::int FROM audit_events") == eventsBefore + 3)

        // A check through the store, under either spelling, answers not allowed; shipping updates still are.
        for address in ["anna@x.it", "Anna@x.it", "ANNA@X.IT"] {
            #expect(try await fixture.allowed(address, purpose: "marketing") == false)
            #expect(try await fixture.allowed(address, purpose: "shipping_update"))
        }
        let facts = try await fixture.states(["anna@x.it"], purpose: "marketing")
        guard case .withdrawn? = facts.states[0]?.consent else {
            Issue.record(
                "expected the survivor's marketing consent withdrawn, got \(String(describing: facts.states[0]))")
            return
        }
        // Bob moved to today's index with his consent.
        #expect(try await fixture.allowed("bob@x.it", purpose: "marketing"))
        #expect(try await fixture.allowed("BOB@x.it", purpose: "marketing"))

        // The duplicate's sealed data was sealed again under the survivor's key and id: it still opens.
        try await fixture.database.withClient(\.owner) { client in
            try await client.withTenantTransaction(fixture.tenantId, logger: fixture.logger) { connection in
                let handle = try await SubjectDirectory.open(
                    survivor, keyring: fixture.keyring, on: connection, logger: fixture.logger)
                let collections = try await connection.query(
                    "SELECT id, provenance_ciphertext FROM collections WHERE subject_id = \(survivor)",
                    logger: fixture.logger
                ).decode((UUID, ByteBuffer).self).array()
                #expect(collections.count == 2)
                for (id, sealed) in collections {
                    let opened = try handle.open(
                        Array(sealed.readableBytesView), context: "collection:\(id.lowercased)")
                    let provenance = try JSONDecoder().decode(Provenance.self, from: Data(opened))
                    #expect(provenance.pageUrl == "https://shop.example/signup")
                }
                let messages = try await connection.query(
                    "SELECT id, text_ciphertext FROM interactions WHERE subject_id = \(survivor)",
                    logger: fixture.logger
                ).decode((UUID, ByteBuffer).self).array()
                for (id, sealed) in messages {
                    let text = try handle.open(
                        Array(sealed.readableBytesView), context: "interaction:\(id.lowercased)")
                    #expect(String(decoding: text, as: UTF8.self) == "please keep me posted")
                }
            }
        }

        // The objection made under the earlier form now matches today's form too, with its scope.
        #expect(
            try await fixture.count(
                """
                SELECT count(*)::int FROM suppressions
                WHERE keyed_hash = '\\x\(newSuppression.hexString)' AND scope = 'marketing' AND reason = 'objected'
                """) == 1)
        // Anna's access export holds the duplicate's events too, each with its proof: the merge moved their consents
        // to her, and her history is the whole of it.
        let export = try #require(
            try await fixture.database.withClient(\.app) { client in
                let exporter = SubjectExporter(
                    client: client, keyring: fixture.keyring,
                    sequencer: AuditSequencer(client: client, signer: auditSigner), signer: auditSigner)
                return try await exporter.export(
                    try SubjectIdentifier("anna@x.it", channel: .email), tenantId: fixture.tenantId,
                    logger: fixture.logger)
            })
        let exported = export.auditEvents.filter { $0.record.subjectRef == duplicate }
        #expect(exported.count == duplicateEvents, "\(exported.count) of \(duplicateEvents)")
        #expect(
            export.auditEvents.contains { $0.record.action == "subject.merged" && $0.record.subjectRef == survivor })
        // The duplicate's idempotency record now names Anna's index, so erasing Anna deletes it too.
        #expect(
            try await fixture.count(
                """
                SELECT count(*)::int FROM idempotency_keys
                WHERE key = 'dup-1' AND subject_refs = ARRAY['\\x\(annaIndex.hexString)'::bytea]
                """) == 1)
        // Caches drop the duplicate's earlier index (and the survivor's): both are in the change log.
        #expect(
            try await fixture.count(
                "SELECT count(*)::int FROM consent_change_log WHERE blind_index = '\\x\(duplicateIndex.hexString)'")
                == 1)

        // Again: nothing left to do, and nothing changes.
        let subjects = try await fixture.count("SELECT count(*)::int FROM subjects")
        let consents = try await fixture.count("SELECT count(*)::int FROM consents")
        let events = try await fixture.count("SELECT count(*)::int FROM audit_events")
        let changes = try await fixture.count("SELECT count(*)::int FROM consent_change_log")
        #expect(try await fixture.reindex() == ReindexReport())
        #expect(try await fixture.count("SELECT count(*)::int FROM subjects") == subjects)
        #expect(try await fixture.count("SELECT count(*)::int FROM consents") == consents)
        #expect(try await fixture.count("SELECT count(*)::int FROM audit_events") == events)
        #expect(try await fixture.count("SELECT count(*)::int FROM consent_change_log") == changes)
        #expect(try await fixture.allowed("anna@x.it", purpose: "marketing") == false)
    }

    /// The merge function refuses what is not two subjects of one tenant on one channel, and the runtime role
    /// cannot call it at all.
    @Test func mergeRefusesWhatIsNotTwoSubjectsOfOneTenant() async throws {
        let fixture = try await Fixture.make()
        let anna = try await fixture.optIn("anna@x.it", ["marketing"], collectedAt: Date())
        let bob = try await fixture.optIn("bob@x.it", ["marketing"], collectedAt: Date())
        try await fixture.database.withClient(\.owner) { client in
            for (duplicate, survivor) in [(anna, anna), (UUID(), bob), (anna, UUID())] {
                await #expect(throws: (any Error).self) {
                    try await client.query(
                        "SELECT app_merge_subject(\(fixture.tenantId), \(duplicate), \(survivor))"
                    ).collect()
                }
            }
            // Another tenant's id names nobody: row security and the tenant filter agree.
            await #expect(throws: (any Error).self) {
                try await client.query("SELECT app_merge_subject(\(UUID()), \(anna), \(bob))").collect()
            }
        }
        try await fixture.database.withClient(\.app) { client in
            let error = await #expect(throws: (any Error).self) {
                try await client.withTenantTransaction(fixture.tenantId, logger: fixture.logger) { connection in
                    try await connection.query(
                        "SELECT app_merge_subject(\(fixture.tenantId), \(anna), \(bob))", logger: fixture.logger
                    ).collect()
                }
            }
            #expect(error.flatMap(DatabaseErrors.sqlState) == DatabaseErrors.insufficientPrivilege)
        }
        #expect(try await fixture.count("SELECT count(*)::int FROM subjects") == 2)
    }
}

extension ReindexReport {
    init(reindexed: Int = 0, merged: Int = 0) {
        self.init()
        self.reindexed = reindexed
        self.merged = merged
    }
}
