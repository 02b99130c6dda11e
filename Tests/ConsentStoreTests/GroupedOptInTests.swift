import ConsentCore
import ConsentTesting
import Crypto
import Foundation
import PostgresNIO
import Testing

@testable import ConsentStore

/// `app_record_new_opt_ins` (a group of new people's opt-ins in one statement) against `app_record_opt_in` (one at
/// a time), the reference: two tenants set up alike, the same opt-ins sent one way to the first and as one group
/// to the second, and the answers, the rows and the audit trail compared.
@Suite struct GroupedOptInTests {
    struct Tenant: Sendable {
        let id: UUID
        let caller: CallerIdentity
        let whatsappNotice: UUID
        let smsNotice: UUID
    }

    /// One opt-in of the comparison: whom, what, and the objection made before it, if any.
    struct Case: Sendable {
        let name: String
        let phone: String
        var purposes = ["shipping_update", "marketing"]
        var method = CollectionMethod.checkbox
        /// Seconds from now (negative: before the objection, which is made an hour ago).
        var collected: TimeInterval = 0
        var objection: ObjectionScope?
        var notice = NoticeChoice.whatsapp
    }

    enum NoticeChoice: Sendable { case whatsapp, sms, missing }

    static let cases: [Case] = [
        Case(name: "new person, both purposes", phone: "+393331000001"),
        Case(name: "double opt-in", phone: "+393331000002", purposes: ["marketing"], method: .doubleOptIn),
        Case(name: "after a marketing objection", phone: "+393331000003", objection: .marketing),
        Case(
            name: "collected before a marketing objection", phone: "+393331000004", collected: -7200,
            objection: .marketing),
        Case(
            name: "import after a marketing objection", phone: "+393331000005", method: .import,
            objection: .marketing),
        Case(name: "import after a full objection", phone: "+393331000006", method: .import, objection: .all),
        Case(name: "collected before a full objection", phone: "+393331000007", collected: -7200, objection: .all),
        Case(name: "checkbox after a full objection", phone: "+393331000008", objection: .all),
        Case(name: "notice not found", phone: "+393331000009", notice: .missing),
        Case(name: "notice for SMS", phone: "+393331000010", notice: .sms),
        Case(name: "unknown purpose", phone: "+393331000011", purposes: ["marketing", "no_such_purpose"]),
        Case(name: "purpose outside the notice", phone: "+393331000012", purposes: ["payment_update"]),
        Case(
            name: "utility only", phone: "+393331000013", purposes: ["shipping_update"], method: .import,
            objection: .marketing),
    ]

    static func tenant(_ name: String, database: TestDatabase) async throws -> Tenant {
        let logger = database.logger
        let (tenant, key) = try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName(name)!, logger: logger)
            let key = try await APIKeyStore(client: client).create(
                tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin], label: "", logger: logger)
            return (tenant, key)
        }
        let caller = CallerIdentity(keyId: key.record.id, tenantId: tenant.id, scopes: [.consentWrite, .dpo, .admin])
        let (whatsapp, sms) = try await database.withClient(\.app) { client throws in
            try await client.withTenantTransaction(tenant.id, logger: logger) { connection in
                let whatsapp = try await NoticeStore.create(
                    tenantId: tenant.id, channel: .whatsapp, language: "en", text: "Updates and offers?",
                    purposes: ["shipping_update", "marketing"], actor: caller, on: connection, logger: logger)
                let sms = try await NoticeStore.create(
                    tenantId: tenant.id, channel: .sms, language: "en", text: "Texts?", purposes: ["marketing"],
                    actor: caller, on: connection, logger: logger)
                return (whatsapp.id, sms.id)
            }
        }
        return Tenant(id: tenant.id, caller: caller, whatsappNotice: whatsapp, smsNotice: sms)
    }

    static func optIn(_ entry: Case, for tenant: Tenant, now: Date) throws -> OptIn {
        let notice =
            switch entry.notice {
            case .whatsapp: tenant.whatsappNotice
            case .sms: tenant.smsNotice
            case .missing: UUID()
            }
        return OptIn(
            subject: try SubjectIdentifier(entry.phone, channel: .whatsapp), purposes: entry.purposes,
            noticeId: notice, method: entry.method, collectedAt: now.addingTimeInterval(entry.collected),
            provenance: Provenance(pageUrl: "https://shop.example/p", userAgent: "UA", ipAddress: "203.0.113.9"))
    }

    /// What an answer says, without the ids that differ between the tenants.
    static func described(_ outcomes: [OptInPurposeOutcome]) -> [String] {
        outcomes.map { outcome in
            switch outcome {
            case .recorded(let consent):
                "\(consent.purpose): \(consent.status.rawValue)\(consent.grantedAt == nil ? "" : ", granted at")"
            case .suppressed(let purpose): "\(purpose): suppressed"
            }
        }
    }

    static func object(_ entries: [Case], tenant: Tenant, keyring: TenantKeyring, client: PostgresClient, now: Date)
        async throws
    {
        for entry in entries {
            guard let scope = entry.objection else { continue }
            let objection = Objection(
                subjects: [try SubjectIdentifier(entry.phone, channel: .whatsapp)], scope: scope, source: .email,
                occurredAt: now.addingTimeInterval(-3600))
            _ = try await client.withTenantTransaction(tenant.id, logger: TestPostgres.logger) { connection in
                try await ConsentLedger.object(
                    objection, id: UUID(), tenantId: tenant.id, caller: tenant.caller, keyring: keyring,
                    on: connection, logger: TestPostgres.logger)
            }
        }
    }

    /// The tenant's consent events in order, each as action and what it names, ids left out.
    static func trail(_ tenant: UUID, database: TestDatabase) async throws -> [String] {
        try await database.withClient(\.superuser) { client throws in
            let rows = try await client.query(
                """
                SELECT action || ' ' || coalesce(data->>'purpose', '') || ' ' || coalesce(data->>'method', '')
                       || ' ' || (data ? 'consentId')::text || ' ' || (data ? 'collectionId')::text
                FROM audit_events WHERE tenant_id = \(tenant) AND action LIKE 'consent.%' ORDER BY id
                """
            ).collect()
            return try rows.map { try $0.decode(String.self) }
        }
    }

    /// Each query's count, by its name, past row-level security.
    static func counts(_ queries: [(String, String)], in database: TestDatabase) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for (name, sql) in queries { counts[name] = try await database.count(sql) }
        return counts
    }

    /// What is stored for the tenant, counted past row-level security.
    static func footprint(_ tenant: UUID, database: TestDatabase) async throws -> [String: Int] {
        let t = "'\(tenant.uuidString)'"
        return try await GroupedOptInTests.counts(
            [
                ("subjects", "SELECT count(*) FROM subjects WHERE tenant_id = \(t)"),
                ("subject keys", "SELECT count(*) FROM subject_keys WHERE tenant_id = \(t)"),
                ("collections", "SELECT count(*) FROM collections WHERE tenant_id = \(t)"),
                (
                    "collections with provenance",
                    "SELECT count(*) FROM collections WHERE tenant_id = \(t) AND provenance_ciphertext IS NOT NULL"
                ),
                (
                    "granted",
                    "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status = 'granted' AND granted_at IS NOT NULL"
                ),
                ("pending", "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status = 'pending'"),
                ("superseded", "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status = 'superseded'"),
                ("categorised", "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND category IS NOT NULL"),
                ("evidence", "SELECT count(*) FROM consent_evidence WHERE tenant_id = \(t)"),
                (
                    "change log",
                    "SELECT count(*) FROM consent_change_log WHERE tenant_id = \(t) AND channel = 'whatsapp'"
                ),
                ("queued audit events", "SELECT count(*) FROM audit_unsequenced WHERE tenant_id = \(t)"),
            ], in: database)
    }

    @Test func aGroupAnswersAndStoresWhatOneAtATimeDoes() async throws {
        let database = try await TestDatabase.fresh()
        let solo = try await Self.tenant("solo", database: database)
        let grouped = try await Self.tenant("grouped", database: database)
        let keyring = TenantKeyring(masterKey: .random32())
        let now = Date()
        let logger = database.logger
        try await database.withClient(\.app) { client throws in
            try await Self.object(Self.cases, tenant: solo, keyring: keyring, client: client, now: now)
            try await Self.object(Self.cases, tenant: grouped, keyring: keyring, client: client, now: now)

            var one: [String] = []
            for entry in Self.cases {
                let optIn = try Self.optIn(entry, for: solo, now: now)
                let index = try await keyring.blindIndex(
                    optIn.subject, tenantId: solo.id, client: client, logger: logger)
                do {
                    let result = try await client.withTenantTransaction(solo.id, logger: logger) { connection in
                        try await ConsentLedger.recordOptIn(
                            optIn, blindIndex: index, tenantId: solo.id, caller: solo.caller, keyring: keyring,
                            on: connection, logger: logger)
                    }
                    one.append("\(entry.name): \(Self.described(result.outcomes))")
                } catch let error as ConsentWriteError {
                    one.append("\(entry.name): \(error)")
                }
            }

            try await keyring.load(tenantId: grouped.id, client: client, logger: logger)
            let items = try Self.cases.map { entry in
                try #require(
                    try ConsentLedger.newOptIn(
                        try Self.optIn(entry, for: grouped, now: now), caller: grouped.caller, keyring: keyring,
                        suppression: true))
            }
            let answers = try await client.withConnection { connection in
                try await ConsentLedger.recordNewOptIns(items, tenantId: grouped.id, on: connection, logger: logger)
            }
            let group = zip(Self.cases, answers).map { entry, answer in
                switch answer {
                case .recorded(let outcomes, _): "\(entry.name): \(Self.described(outcomes))"
                case .refused(let error): "\(entry.name): \(error)"
                case .retry: "\(entry.name): retry"
                }
            }
            #expect(group == one)
            // The reference itself, for the cases whose rules are subtle.
            #expect(
                one[3]
                    == "collected before a marketing objection: [\"shipping_update: granted, granted at\", \"marketing: superseded\"]"
            )
            #expect(
                one[4]
                    == "import after a marketing objection: [\"shipping_update: granted, granted at\", \"marketing: suppressed\"]"
            )
            #expect(one[5] == "import after a full objection: suppressed")
            #expect(
                one[6]
                    == "collected before a full objection: [\"shipping_update: superseded\", \"marketing: superseded\"]"
            )
            #expect(one[9] == "notice for SMS: noticeForAnotherChannel(ConsentCore.MessageChannel.sms)")
            #expect(one[10] == "unknown purpose: unknownPurposes([\"no_such_purpose\"])")
            #expect(one[11] == "purpose outside the notice: purposesNotInNotice([\"payment_update\"])")

            // Each recorded item's change position is its own.
            let positions = answers.compactMap { answer -> Int64? in
                if case .recorded(_, let position) = answer { position } else { nil }
            }
            #expect(Set(positions).count == positions.count)
        }
        #expect(try await Self.trail(grouped.id, database: database) == Self.trail(solo.id, database: database))
        let soloFootprint = try await Self.footprint(solo.id, database: database)
        #expect(try await Self.footprint(grouped.id, database: database) == soloFootprint)
        #expect(soloFootprint["subjects"] == 8, "the refused people were not made: \(soloFootprint)")
    }

    @Test func someoneHeldOrNamedTwiceIsLeftForTheSingleWrite() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await Self.tenant("held", database: database)
        let keyring = TenantKeyring(masterKey: .random32())
        let now = Date()
        let logger = database.logger
        try await database.withClient(\.app) { client throws in
            try await keyring.load(tenantId: tenant.id, client: client, logger: logger)
            let held = Case(name: "held", phone: "+393332000001")
            let first = try #require(
                try ConsentLedger.newOptIn(
                    try Self.optIn(held, for: tenant, now: now), caller: tenant.caller, keyring: keyring,
                    suppression: true))
            let made = try await client.withConnection { connection in
                try await ConsentLedger.recordNewOptIns([first], tenantId: tenant.id, on: connection, logger: logger)
            }
            guard case .recorded = made.first else {
                Issue.record("the first opt-in was not recorded: \(made)")
                return
            }

            let twice = Case(name: "twice", phone: "+393332000002")
            let items = try [held, twice, twice].map { entry in
                try #require(
                    try ConsentLedger.newOptIn(
                        try Self.optIn(entry, for: tenant, now: now), caller: tenant.caller, keyring: keyring,
                        suppression: true))
            }
            let answers = try await client.withConnection { connection in
                try await ConsentLedger.recordNewOptIns(items, tenantId: tenant.id, on: connection, logger: logger)
            }
            #expect(answers.count == 3)
            #expect(answers[0] == .retry, "someone held is reconciled by the single write")
            guard case .recorded = answers[1] else {
                Issue.record("the first of the pair: \(answers[1])")
                return
            }
            #expect(answers[2] == .retry, "the second of the pair waits for the first")
        }
        let t = "'\(tenant.id.uuidString)'"
        #expect(try await database.count("SELECT count(*) FROM subjects WHERE tenant_id = \(t)") == 2)
        #expect(try await database.count("SELECT count(*) FROM consents WHERE tenant_id = \(t)") == 4)
        #expect(try await database.count("SELECT count(*) FROM collections WHERE tenant_id = \(t)") == 2)
    }

    /// CL015 is the single write's answer for someone not held only. Someone held who objected, or someone named
    /// again in the same group, is answered by `app_record_opt_in` (201 with the purposes suppressed): retried.
    @Test func anImportWithNothingToRecordIsRefusedOnlyForSomeoneNotHeld() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await Self.tenant("objected", database: database)
        let keyring = TenantKeyring(masterKey: .random32())
        let now = Date()
        let logger = database.logger
        let held = Case(name: "held, then objected", phone: "+393332100001", purposes: ["marketing"], method: .import)
        let stranger = Case(
            name: "not held, objected", phone: "+393332100002", purposes: ["marketing"], method: .import,
            objection: .all)
        let twice = [
            Case(name: "twice: a checkbox", phone: "+393332100003", purposes: ["marketing"], objection: .marketing),
            Case(name: "twice: an import", phone: "+393332100003", purposes: ["marketing"], method: .import),
        ]
        try await database.withClient(\.app) { client throws in
            try await keyring.load(tenantId: tenant.id, client: client, logger: logger)
            // The held person opts in, then objects to marketing: the objection keeps them.
            let first = try #require(
                try ConsentLedger.newOptIn(
                    try Self.optIn(
                        Case(name: "first", phone: held.phone), for: tenant, now: now.addingTimeInterval(-7200)),
                    caller: tenant.caller, keyring: keyring, suppression: true))
            _ = try await client.withConnection { connection in
                try await ConsentLedger.recordNewOptIns([first], tenantId: tenant.id, on: connection, logger: logger)
            }
            let objectionOfTheHeld = Case(name: "objection", phone: held.phone, objection: .marketing)
            try await Self.object(
                [objectionOfTheHeld, stranger, twice[0]], tenant: tenant, keyring: keyring, client: client, now: now)

            let items = try [held, stranger, twice[0], twice[1]].map { entry in
                try #require(
                    try ConsentLedger.newOptIn(
                        try Self.optIn(entry, for: tenant, now: now), caller: tenant.caller, keyring: keyring,
                        suppression: true))
            }
            let answers = try await client.withConnection { connection in
                try await ConsentLedger.recordNewOptIns(items, tenantId: tenant.id, on: connection, logger: logger)
            }
            #expect(answers[0] == .retry, "someone held is answered by the single write, not refused")
            #expect(answers[1] == .refused(.suppressed), "someone not held with nothing to record is refused")
            guard case .recorded = answers[2] else {
                Issue.record("the checkbox: \(answers[2])")
                return
            }
            #expect(answers[3] == .retry, "the import of someone the group makes is answered after it")
        }
    }

    /// The store as the server runs it (pool of 8, no check cache), running until the task is cancelled.
    static func runningStore(_ database: TestDatabase, keyring: TenantKeyring = TenantKeyring(masterKey: .random32()))
        -> (ConsentDatabase, Task<Void, Never>)
    {
        let store = ConsentDatabase(
            client: PostgresClient(url: database.app, logger: database.logger),
            connector: DedicatedConnector(url: database.app), keyring: keyring, checkCache: nil, poolSize: 8)
        return (store, Task { await store.run() })
    }

    /// Through the store as the server calls it: many opt-ins at once, new people, someone held, a bad notice.
    @Test func concurrentOptInsThroughTheStoreAreEachRecordedOnce() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await Self.tenant("busy", database: database)
        let logger = database.logger
        let (store, serving) = Self.runningStore(database)
        defer { serving.cancel() }
        let ledger = ConsentLedger(keyring: store.keyring, suppression: true)
        let now = Date()
        // Sixty new people, one person three times over, and five opt-ins naming no notice.
        var entries = (0..<60).map { Case(name: "new \($0)", phone: String(format: "+39333300%04d", $0)) }
        entries += (0..<3).map { Case(name: "same \($0)", phone: "+393334000000") }
        entries += (0..<5).map { Case(name: "bad \($0)", phone: String(format: "+39333500%04d", $0), notice: .missing) }
        let results = try await withThrowingTaskGroup(of: (String, Result<OptInResult, ConsentWriteError>).self) {
            tasks in
            for entry in entries {
                tasks.addTask {
                    let work = ledger.optIn(try Self.optIn(entry, for: tenant, now: now), caller: tenant.caller)
                    do {
                        return (entry.name, .success(try await store.commit(work, logger: logger)))
                    } catch let error as ConsentWriteError {
                        return (entry.name, .failure(error))
                    }
                }
            }
            var results: [String: Result<OptInResult, ConsentWriteError>] = [:]
            for try await (name, result) in tasks { results[name] = result }
            return results
        }
        for entry in entries {
            let result = try #require(results[entry.name])
            switch result {
            case .success(let optIn):
                #expect(!entry.name.hasPrefix("bad"), "\(entry.name) was recorded")
                #expect(Self.described(optIn.outcomes).count == 2)
            case .failure(let error):
                #expect(entry.name.hasPrefix("bad") && error == .noticeNotFound, "\(entry.name): \(error)")
            }
        }
        let t = "'\(tenant.id.uuidString)'"
        #expect(try await database.count("SELECT count(*) FROM subjects WHERE tenant_id = \(t)") == 61)
        #expect(try await database.count("SELECT count(*) FROM collections WHERE tenant_id = \(t)") == 63)
        // The held person's second and third opt-ins reconfirm what the first granted.
        #expect(
            try await database.count(
                "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status IN ('granted', 'pending')") == 122)
        #expect(
            try await database.count(
                "SELECT count(*) FROM audit_events WHERE tenant_id = \(t) AND action = 'consent.granted'") == 122)
        #expect(
            try await database.count(
                "SELECT count(*) FROM audit_events WHERE tenant_id = \(t) AND action = 'consent.reconfirmed'") == 4)
        let transactions = try await database.count(
            "SELECT count(DISTINCT xmin::text) FROM subjects WHERE tenant_id = \(t)")
        #expect(transactions < 61, "some opt-ins shared a statement: 61 people made in \(transactions) transactions")
    }
}
