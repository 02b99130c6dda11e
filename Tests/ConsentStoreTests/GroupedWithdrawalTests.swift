import ConsentCore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

@testable import ConsentStore

/// `app_record_withdrawals` (a group of withdrawals in one statement) against `app_revoke` (one at a time), the
/// reference: two tenants set up alike, the same withdrawals made one way in the first and as one group in the
/// second (a `retry` then made alone, as the service does), and the answers, rows and audit trail compared.
@Suite struct GroupedWithdrawalTests {
    struct Case: Sendable {
        let name: String
        let phone: String
        /// What the person gave before the withdrawal; nil: not held.
        var held: (purposes: [String], method: CollectionMethod)? = (["shipping_update", "marketing"], .checkbox)
        /// Nil: everything.
        var purposes: [String]? = ["marketing"]
        var source = RevocationSource.api
    }

    static let cases: [Case] = [
        Case(name: "one purpose of two", phone: "+393336000001"),
        Case(name: "everything", phone: "+393336000002", purposes: nil),
        Case(name: "a purpose never given", phone: "+393336000003", held: (["shipping_update"], .checkbox)),
        Case(
            name: "a pending double opt-in", phone: "+393336000004", held: (["marketing"], .doubleOptIn),
            purposes: nil),
        Case(name: "someone not held, everything", phone: "+393336000005", held: nil, purposes: nil),
        Case(name: "someone not held, one purpose", phone: "+393336000006", held: nil),
        Case(name: "an unknown purpose", phone: "+393336000007", purposes: ["marketing", "no_such_purpose"]),
        Case(name: "by the DPO", phone: "+393336000008", source: .dpo),
        Case(name: "twice: first", phone: "+393336000009"),
        Case(name: "twice: then everything", phone: "+393336000009", purposes: nil),
        Case(name: "someone not held, everything, twice", phone: "+393336000005", held: nil, purposes: nil),
    ]

    static func hold(
        _ entries: [Case], tenant: GroupedOptInTests.Tenant, keyring: TenantKeyring, client: PostgresClient
    )
        async throws
    {
        for entry in entries {
            guard let held = entry.held else { continue }
            let subject = try SubjectIdentifier(entry.phone, channel: .whatsapp)
            let index = try await keyring.blindIndex(
                subject, tenantId: tenant.id, client: client, logger: TestPostgres.logger)
            let optIn = OptIn(
                subject: subject, purposes: held.purposes, noticeId: tenant.whatsappNotice, method: held.method,
                collectedAt: Date(),
                provenance: Provenance(pageUrl: "https://shop.example/p", userAgent: nil, ipAddress: nil))
            _ = try await client.withTenantTransaction(tenant.id, logger: TestPostgres.logger) { connection in
                try await ConsentLedger.recordOptIn(
                    optIn, blindIndex: index, tenantId: tenant.id, caller: tenant.caller, keyring: keyring,
                    on: connection, logger: TestPostgres.logger)
            }
        }
    }

    /// One withdrawal alone, as `ConsentLedger.revoke`'s single path makes it.
    static func alone(_ entry: Case, tenant: GroupedOptInTests.Tenant, keyring: TenantKeyring, client: PostgresClient)
        async throws -> String
    {
        let subject = try SubjectIdentifier(entry.phone, channel: .whatsapp)
        let index = try await keyring.blindIndex(
            subject, tenantId: tenant.id, client: client, logger: TestPostgres.logger)
        do {
            let result = try await client.withConnection { connection in
                try await ConsentLedger.revoke(
                    subject: index, identifier: subject, channel: .whatsapp, purposes: entry.purposes,
                    source: entry.source, tenantId: tenant.id, caller: tenant.caller, keyring: keyring,
                    suppression: true, on: connection, logger: TestPostgres.logger)
            }
            return "\(entry.name): \(result.revoked.map(\.purpose))"
        } catch let error as ConsentWriteError {
            return "\(entry.name): \(error)"
        }
    }

    static func trail(_ tenant: UUID, database: TestDatabase) async throws -> [String] {
        try await database.withClient(\.superuser) { client throws in
            let rows = try await client.query(
                """
                SELECT action || ' ' || coalesce(data->>'purpose', '') || ' ' || coalesce(data->>'source', '')
                       || ' ' || coalesce(data->>'reason', '') || ' ' || (subject_ref IS NULL)::text
                FROM audit_events WHERE tenant_id = \(tenant)
                  AND action IN ('consent.withdrawn', 'suppression.added') ORDER BY id
                """
            ).collect()
            return try rows.map { try $0.decode(String.self) }
        }
    }

    static func footprint(_ tenant: UUID, database: TestDatabase) async throws -> [String: Int] {
        let t = "'\(tenant.uuidString)'"
        return try await GroupedOptInTests.counts(
            [
                ("withdrawn", "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status = 'withdrawn'"),
                (
                    "withdrawn by the DPO",
                    "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND revoke_source = 'dpo' AND revoked_by IS NOT NULL"
                ),
                (
                    "still active",
                    "SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status IN ('granted', 'pending')"
                ),
                (
                    "stops of everything",
                    "SELECT count(*) FROM consent_stops WHERE tenant_id = \(t) AND purpose IS NULL AND category IS NULL"
                ),
                (
                    "stops of a purpose",
                    "SELECT count(*) FROM consent_stops WHERE tenant_id = \(t) AND purpose IS NOT NULL"
                ),
                (
                    "suppression entries",
                    "SELECT count(*) FROM suppressions WHERE tenant_id = \(t) AND reason = 'objected'"
                ),
                (
                    "change log",
                    "SELECT count(*) FROM consent_change_log WHERE tenant_id = \(t) AND channel = 'whatsapp'"
                ),
            ], in: database)
    }

    @Test func aGroupAnswersAndStoresWhatOneAtATimeDoes() async throws {
        let database = try await TestDatabase.fresh()
        let solo = try await GroupedOptInTests.tenant("solo", database: database)
        let grouped = try await GroupedOptInTests.tenant("grouped", database: database)
        let keyring = TenantKeyring(masterKey: .random32())
        let logger = database.logger
        try await database.withClient(\.app) { client throws in
            try await Self.hold(Self.cases, tenant: solo, keyring: keyring, client: client)
            try await Self.hold(Self.cases, tenant: grouped, keyring: keyring, client: client)

            var one: [String] = []
            for entry in Self.cases {
                one.append(try await Self.alone(entry, tenant: solo, keyring: keyring, client: client))
            }

            try await keyring.load(tenantId: grouped.id, client: client, logger: logger)
            let items = try Self.cases.map { entry in
                try #require(
                    ConsentLedger.groupedWithdrawal(
                        try SubjectIdentifier(entry.phone, channel: .whatsapp), purposes: entry.purposes,
                        source: entry.source, caller: grouped.caller, keyring: keyring, suppression: true))
            }
            let answers = try await client.withConnection { connection in
                try await ConsentLedger.recordWithdrawals(items, tenantId: grouped.id, on: connection, logger: logger)
            }
            var group: [String] = []
            var retried: [String] = []
            for (entry, answer) in zip(Self.cases, answers) {
                switch answer {
                case .withdrawn(let revoked, _): group.append("\(entry.name): \(revoked.map(\.purpose))")
                case .refused(let error): group.append("\(entry.name): \(error)")
                case .retry:
                    retried.append(entry.name)
                    group.append(try await Self.alone(entry, tenant: grouped, keyring: keyring, client: client))
                }
            }
            #expect(group == one)
            #expect(retried == ["twice: then everything", "someone not held, everything, twice"])
            // The reference itself, where the rules are subtle.
            #expect(one[1] == "everything: [\"marketing\", \"shipping_update\"]")
            #expect(one[2] == "a purpose never given: []")
            #expect(one[3] == "a pending double opt-in: [\"marketing\"]")
            #expect(one[6] == "an unknown purpose: unknownPurposes([\"no_such_purpose\"])")
            #expect(one[9] == "twice: then everything: [\"shipping_update\"]")
        }
        // A group's events for different people share one transaction, and a suppression entry's is written before
        // the group's withdrawals: the same events, not in the same order across people.
        #expect(
            try await Self.trail(grouped.id, database: database).sorted()
                == Self.trail(solo.id, database: database).sorted())
        let soloFootprint = try await Self.footprint(solo.id, database: database)
        #expect(try await Self.footprint(grouped.id, database: database) == soloFootprint)
        #expect(soloFootprint["suppression entries"] == 1, "\(soloFootprint)")
    }

    /// Through the store as the server calls it: many withdrawals at once, some of one person.
    @Test func concurrentWithdrawalsThroughTheStoreAreEachMadeOnce() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await GroupedOptInTests.tenant("busy", database: database)
        let logger = database.logger
        let (store, serving) = GroupedOptInTests.runningStore(database)
        defer { serving.cancel() }
        let ledger = ConsentLedger(keyring: store.keyring, suppression: true)
        let people = (0..<40).map { Case(name: "person \($0)", phone: String(format: "+39333700%04d", $0)) }
        try await database.withClient(\.app) { client throws in
            try await Self.hold(people, tenant: tenant, keyring: store.keyring, client: client)
        }
        // Each person withdraws marketing, and the first five everything as well, all at once.
        var requests = people.map { ($0.phone, ["marketing"] as [String]?) }
        requests += people.prefix(5).map { ($0.phone, nil) }
        let revoked = try await withThrowingTaskGroup(of: [RevokedConsent].self) { tasks in
            for (phone, purposes) in requests {
                tasks.addTask {
                    let work = ledger.revoke(
                        try SubjectIdentifier(phone, channel: .whatsapp), purposes: purposes, source: .api,
                        caller: tenant.caller)
                    return try await store.commit(work, logger: logger).revoked
                }
            }
            var all: [RevokedConsent] = []
            for try await some in tasks { all += some }
            return all
        }
        #expect(revoked.count == 45, "40 marketing consents and five shipping ones, each withdrawn once")
        #expect(Set(revoked.map(\.id)).count == revoked.count)
        let t = "'\(tenant.id.uuidString)'"
        #expect(
            try await database.count("SELECT count(*) FROM consents WHERE tenant_id = \(t) AND status = 'withdrawn'")
                == 45)
        #expect(
            try await database.count(
                "SELECT count(*) FROM audit_events WHERE tenant_id = \(t) AND action = 'consent.withdrawn'") == 45)
        #expect(try await database.count("SELECT count(*) FROM consent_stops WHERE tenant_id = \(t)") == 45)
    }
}
