import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import NIOCore
import PostgresNIO
import Synchronization
import Testing

/// Issue 22: change webhooks, from the change's transaction to a receiver on a loopback port, signed by the
/// Standard Webhooks scheme and checked by an implementation that is not the service's.
@Suite struct WebhookTests {
    static let ada = "+393331200001"
    static let bob = "+393331200002"

    /// Retries within the test's patience; the deliverer still rounds every second.
    static let quickRetries = WebhookRetrySchedule(
        firstDelay: .milliseconds(100), maximumDelay: .milliseconds(400), giveUpAfter: .seconds(3600),
        minimumAttempts: 1000)

    struct EndpointReply: Decodable {
        let id: String
        let url: String
        let events: [String]
        let status: String
        let secret: String?
        let disabledReason: String?
        let previousSecretValidUntil: String?
    }

    struct DeliveriesReply: Decodable {
        struct Delivery: Decodable {
            struct Attempt: Decodable {
                let attempt: Int
                let statusCode: Int?
                let latencyMs: Int
                let error: String?
            }
            let id: Int64
            let eventId: String
            let type: String
            let state: String
            let redeliveryOf: Int64?
            let attempts: [Attempt]
        }
        let deliveries: [Delivery]
    }

    struct Queued: Decodable {
        let deliveryId: Int64
        let eventId: String
    }

    static func withWebhookApp(
        _ given: TestDatabase? = nil, allowLoopback: Bool = true, retries: WebhookRetrySchedule = quickRetries,
        tenants names: [String] = ["acme"], masterKey: SecretBytes = .random32(),
        _ body: @escaping @Sendable ([APIClient], TestDatabase) async throws -> Void
    ) async throws {
        let database: TestDatabase
        if let given { database = given } else { database = try await TestDatabase.fresh() }
        var tenants: [SeededTenant] = []
        for name in names { tenants.append(try await SeededTenant.make(name, in: database)) }
        let seeded = tenants
        let configure: (inout ServerDependencies) -> Void = {
            $0.webhookTargets.allowLoopback = allowLoopback
            $0.webhookRetries = retries
        }
        try await withRunningApp(database, masterKey: masterKey, configure: configure) { client in
            try await body(seeded.map { APIClient(client: client, tenant: $0) }, database)
        }
    }

    static func register(_ api: APIClient, url: String, events: [String]) async throws -> EndpointReply {
        let reply = try await api.post("/v1/webhooks/endpoints", as: .admin, ["url": url, "events": events])
        #expect(reply.status == .created, "\(reply.text)")
        return try reply.decoded(EndpointReply.self)
    }

    static let consentEvents = ["consent.granted", "consent.withdrawn", "consent.superseded"]

    @Test func aChangeIsDeliveredSignedWithoutTheIdentifierAndInOrder() async throws {
        try await withWebhookReceiver { receiver, url in
            try await Self.withWebhookApp { tenants, _ in
                let acme = tenants[0]
                let endpoint = try await Self.register(acme, url: url, events: Self.consentEvents)
                let secret = try #require(endpoint.secret)
                #expect(secret.hasPrefix("whsec_") && WebhookSecret(encoded: secret) != nil)
                #expect(endpoint.status == "active")
                // The secret is shown once: neither the list nor the endpoint's own page has it.
                let listed = try await acme.call(.get, "/v1/webhooks/endpoints", as: .admin)
                #expect(listed.status == .ok && !listed.text.contains(secret) && !listed.text.contains("secret\""))

                let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
                let optIn = try await acme.optIn(
                    Self.ada, purposes: ["marketing", "shipping_update"], noticeId: notice)
                #expect(optIn.status == .created, "\(optIn.text)")
                let withdrawal = try await acme.post(
                    "/v1/revocations", as: .consentWrite,
                    ["subject": Self.ada, "channel": "whatsapp", "purposes": ["marketing"]])
                #expect(withdrawal.status == .ok, "\(withdrawal.text)")

                try await receiver.until("two grants and a withdrawal") { $0.count >= 3 }
                let got = receiver.accepted
                #expect(got.map(\.type) == ["consent.granted", "consent.granted", "consent.withdrawn"])
                for delivery in got {
                    #expect(try verifiedByPython(delivery, secret: secret), "signature of \(delivery.id)")
                    #expect(
                        StandardWebhookSignature.verify(
                            header: delivery.signature, id: delivery.id, timestamp: Int64(delivery.timestamp) ?? 0,
                            body: delivery.body, secret: try #require(WebhookSecret(encoded: secret))))
                    let text = String(decoding: delivery.body, as: UTF8.self)
                    // Never the identifier, in any spelling.
                    #expect(!text.contains("3331200001"), "\(text)")
                    #expect(Set(delivery.json.keys) == ["type", "timestamp", "data"])
                    #expect(delivery.data["channel"] as? String == "whatsapp")
                    #expect((delivery.data["subjectRef"] as? String).flatMap(UUID.init(uuidString:)) != nil)
                    #expect(delivery.data["consentId"] is String && delivery.data["purpose"] is String)
                    #expect(RFC3339.parse(delivery.json["timestamp"] as? String ?? "") != nil)
                    let sent = try #require(Double(delivery.timestamp))
                    #expect(abs(sent - Date().timeIntervalSince1970) < 120)
                }
                #expect(Set(got.map(\.id)).count == 3)
                #expect(got.last?.data["purpose"] as? String == "marketing")
                #expect(Set(got.compactMap { $0.data["subjectRef"] as? String }).count == 1)

                // The deliveries API shows each attempt's status code and latency.
                let page = try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)/deliveries", as: .admin)
                let deliveries = try page.decoded(DeliveriesReply.self).deliveries
                #expect(deliveries.count == 3 && deliveries.allSatisfy { $0.state == "delivered" })
                #expect(deliveries.allSatisfy { $0.attempts.count == 1 && $0.attempts[0].statusCode == 204 })
            }
        }
    }

    @Test func aReceiverThatFailsForAWhileGetsEveryEventOnceInOrderPerPerson() async throws {
        // The first eight requests fail (500, then 503, then a 302 that must not be followed), the rest succeed.
        let failingAtFirst: @Sendable (Int) -> Int = { $0 <= 8 ? [500, 503, 302][$0 % 3] : 200 }
        try await withWebhookReceiver(answer: failingAtFirst) { receiver, url in
            try await Self.withWebhookApp { tenants, _ in
                let acme = tenants[0]
                _ = try await Self.register(acme, url: url, events: Self.consentEvents)
                let notice = try await acme.notice(purposes: ["marketing", "account_update"])
                for person in [Self.ada, Self.bob] {
                    _ = try await acme.optIn(person, purposes: ["marketing"], noticeId: notice)
                    _ = try await acme.post(
                        "/v1/revocations", as: .consentWrite, ["subject": person, "channel": "whatsapp"])
                    _ = try await acme.optIn(
                        person, purposes: ["account_update"], noticeId: notice, provenance: APIClient.freshProvenance)
                }
                try await receiver.until("six events delivered", seconds: 60) { received in
                    received.filter { (200..<300).contains($0.answered) }.count >= 6
                }
                try await Task.sleep(for: .seconds(2))
                let accepted = receiver.accepted
                #expect(accepted.count == 6, "each event accepted once: \(accepted.map(\.type))")
                #expect(Set(accepted.map(\.id)).count == 6)
                #expect(receiver.received.count > 6, "the failures were retried")
                let byPerson = Dictionary(grouping: accepted) { $0.data["subjectRef"] as? String ?? "" }
                #expect(byPerson.count == 2)
                for (_, events) in byPerson {
                    #expect(
                        events.map { "\($0.type) \($0.data["purpose"] as? String ?? "")" } == [
                            "consent.granted marketing", "consent.withdrawn marketing",
                            "consent.granted account_update",
                        ])
                }
            }
        }
    }

    @Test func aRestartMidRetryLosesNothing() async throws {
        let database = try await TestDatabase.fresh()
        // Instances of one deployment share the master key.
        let masterKey = SecretBytes.random32()
        let failing: @Sendable (Int) -> Int = { _ in 500 }
        try await withWebhookReceiver(answer: failing) { receiver, url in
            try await Self.withWebhookApp(database, masterKey: masterKey) { tenants, _ in
                let acme = tenants[0]
                _ = try await Self.register(acme, url: url, events: Self.consentEvents)
                let notice = try await acme.notice(purposes: ["marketing"])
                _ = try await acme.optIn(Self.ada, purposes: ["marketing"], noticeId: notice)
                try await receiver.until("two failed attempts") { $0.count >= 2 }
            }
            // The service is down; the receiver recovers; a new instance on the same database takes over.
            receiver.answer { _ in 200 }
            let failedBefore = receiver.received.count
            try await Self.withWebhookApp(database, tenants: [], masterKey: masterKey) { _, _ in
                try await receiver.until("the delivery after the restart") { $0.contains { $0.answered == 200 } }
                // The receiver's answer is in before the deliverer records it.
                for _ in 0..<200 {
                    let delivered = try await database.count(
                        "SELECT count(*)::int8 FROM webhook_deliveries WHERE state = 'delivered'")
                    if delivered == 1 { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let accepted = receiver.accepted
            #expect(accepted.count == 1 && accepted.first?.type == "consent.granted")
            #expect(Set(receiver.received.map(\.id)).count == 1, "the same event, retried")
            #expect(receiver.received.count > failedBefore)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM webhook_deliveries WHERE state = 'delivered'") == 1)
            // Retention: a delivery settled 31 days ago goes, with its attempts and its event.
            #expect(try await ConsentDatabaseProbe.prune(database) == 0)
            _ = try await database.count(
                """
                WITH aged AS (UPDATE webhook_deliveries SET completed_at = now() - interval '31 days' RETURNING 1),
                events AS (UPDATE webhook_events SET occurred_at = now() - interval '31 days' RETURNING 1)
                SELECT (SELECT count(*) FROM aged) + (SELECT count(*) FROM events)
                """)
            #expect(try await ConsentDatabaseProbe.prune(database) == 1)
            for table in ["webhook_deliveries", "webhook_attempts", "webhook_events"] {
                #expect(try await database.count("SELECT count(*)::int8 FROM \(table)") == 0, "\(table)")
            }
        }
    }

    @Test func urlsOutsideThePolicyAreRefusedAndNothingIsStored() async throws {
        try await Self.withWebhookApp(allowLoopback: false) { tenants, database in
            let acme = tenants[0]
            for url in [
                "http://example.com/hook", "https://127.0.0.1/hook", "https://localhost/hook", "https://[::1]/hook",
                "https://10.1.2.3/hook", "https://192.168.0.10/hook", "https://169.254.169.254/latest/meta-data",
                "https://2130706433/hook", "https://0x7f.1/hook", "https://[::ffff:127.0.0.1]/hook",
                "https://100.64.0.1/hook", "https://0.0.0.0/hook", "https://user:pw@example.com/hook",
                "https://example.com/hook#x", "ftp://example.com/hook", "not a url", "https:///hook",
            ] {
                let reply = try await acme.post(
                    "/v1/webhooks/endpoints", as: .admin, ["url": url, "events": ["consent.withdrawn"]])
                #expect(reply.status == .unprocessableContent, "\(url): \(reply.text)")
                #expect(try reply.error.field == "url", "\(url)")
            }
            let unknown = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin,
                ["url": "https://198.51.100.7/hook", "events": ["consent.granted", "consent.exploded"]])
            #expect(unknown.status == .unprocessableContent)
            #expect(try unknown.error.code == "unknown_event")
            let none = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin, ["url": "https://198.51.100.7/hook", "events": []])
            #expect(none.status == .unprocessableContent, "\(none.text)")
            #expect(try none.error.field == "events")
            let notAdmin = try await acme.post(
                "/v1/webhooks/endpoints", as: .consentWrite,
                ["url": "https://198.51.100.7/hook", "events": ["consent.granted"]])
            #expect(notAdmin.status == .forbidden)
            #expect(try await database.count("SELECT count(*)::int8 FROM webhook_endpoints") == 0)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'webhook.%'") == 0)
            // A public address over https is accepted (registration does not connect to it).
            let accepted = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin,
                ["url": "https://198.51.100.7/hook?tenant=acme", "events": ["consent.withdrawn"]])
            #expect(accepted.status == .created, "\(accepted.text)")
        }
        // With loopback allowed (a test receiver), loopback over http is accepted, a private network still is not.
        try await Self.withWebhookApp(allowLoopback: true) { tenants, _ in
            let acme = tenants[0]
            let loopback = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin, ["url": "http://127.0.0.1:9/hook", "events": ["consent.granted"]])
            #expect(loopback.status == .created, "\(loopback.text)")
            let lan = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin, ["url": "http://10.0.0.1/hook", "events": ["consent.granted"]])
            #expect(lan.status == .unprocessableContent)
            let plainPublic = try await acme.post(
                "/v1/webhooks/endpoints", as: .admin,
                ["url": "http://198.51.100.7/hook", "events": ["consent.granted"]])
            #expect(plainPublic.status == .unprocessableContent)
        }
    }

    @Test func anEndpointThatNeverAnswersIsDisabledTheDPOIsToldAndEnablingResumes() async throws {
        let givesUpAtOnce = WebhookRetrySchedule(
            firstDelay: .milliseconds(50), maximumDelay: .milliseconds(100), giveUpAfter: .zero, minimumAttempts: 3)
        let failing: @Sendable (Int) -> Int = { _ in 500 }
        try await withWebhookReceiver(answer: failing) { receiver, url in
            try await Self.withWebhookApp(retries: givesUpAtOnce) { tenants, database in
                let acme = tenants[0]
                let endpoint = try await Self.register(acme, url: url, events: Self.consentEvents)
                let notice = try await acme.notice(purposes: ["marketing"])
                _ = try await acme.optIn(Self.ada, purposes: ["marketing"], noticeId: notice)
                try await receiver.until("three attempts") { $0.count >= 3 }
                var shown = try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)", as: .admin)
                for _ in 0..<100 where try shown.decoded(EndpointReply.self).status != "disabled" {
                    try await Task.sleep(for: .milliseconds(100))
                    shown = try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)", as: .admin)
                }
                let disabled = try shown.decoded(EndpointReply.self)
                #expect(disabled.status == "disabled" && disabled.disabledReason?.contains("24 hours") == true)
                #expect(
                    try await database.count(
                        "SELECT count(*)::int8 FROM audit_events WHERE action = 'webhook.endpoint_disabled'") == 1)
                // The DPO sees it in the console's audit trail and on the webhooks page (ConsoleTests); a later
                // change is held, not sent, while the endpoint is disabled.
                _ = try await acme.post(
                    "/v1/revocations", as: .consentWrite, ["subject": Self.ada, "channel": "whatsapp"])
                try await Task.sleep(for: .seconds(2))
                #expect(receiver.received.count == 3)

                receiver.answer { _ in 200 }
                let enabled = try await acme.call(.post, "/v1/webhooks/endpoints/\(endpoint.id)/enable", as: .admin)
                #expect(enabled.status == .ok)
                #expect(try enabled.decoded(EndpointReply.self).status == "active")
                // The given-up grant stays failed (a manual redelivery sends it); the withdrawal held behind it goes.
                try await receiver.until("the held withdrawal") { $0.contains { $0.type == "consent.withdrawn" } }
                let page = try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)/deliveries", as: .admin)
                let deliveries = try page.decoded(DeliveriesReply.self).deliveries
                let failed = try #require(deliveries.first { $0.state == "failed" })
                #expect(failed.type == "consent.granted" && failed.attempts.count == 3)
                #expect(failed.attempts.allSatisfy { $0.statusCode == 500 && $0.latencyMs >= 0 })
                let again = try await acme.call(
                    .post, "/v1/webhooks/endpoints/\(endpoint.id)/deliveries/\(failed.id)/redeliver", as: .admin)
                #expect(again.status == .accepted, "\(again.text)")
                let queued = try again.decoded(Queued.self)
                #expect(queued.eventId == failed.eventId)
                try await receiver.until("the redelivered grant") { received in
                    received.contains { $0.type == "consent.granted" && $0.answered == 200 }
                }
                #expect(receiver.accepted.filter { $0.type == "consent.granted" }.map(\.id) == [failed.eventId])
                let missing = try await acme.call(
                    .post, "/v1/webhooks/endpoints/\(endpoint.id)/deliveries/999999/redeliver", as: .admin)
                #expect(missing.status == .notFound)
            }
        }
    }

    @Test func aRotatedSecretSignsBesideTheOldOneAndTestSendsAreDelivered() async throws {
        try await withWebhookReceiver { receiver, url in
            try await Self.withWebhookApp(tenants: ["acme", "globex"]) { tenants, _ in
                let acme = tenants[0]
                let endpoint = try await Self.register(acme, url: url, events: ["consent.granted"])
                let old = try #require(endpoint.secret)
                let rotated = try await acme.call(
                    .post, "/v1/webhooks/endpoints/\(endpoint.id)/rotate-secret", as: .admin)
                #expect(rotated.status == .ok, "\(rotated.text)")
                let reply = try rotated.decoded(EndpointReply.self)
                let new = try #require(reply.secret)
                #expect(new != old && reply.previousSecretValidUntil != nil)
                let test = try await acme.call(.post, "/v1/webhooks/endpoints/\(endpoint.id)/test", as: .admin)
                #expect(test.status == .accepted, "\(test.text)")
                try await receiver.until("the test event") { $0.contains { $0.type == "webhook.test" } }
                let delivery = try #require(receiver.accepted.first)
                #expect(delivery.signature.split(separator: " ").count == 2)
                #expect(try verifiedByPython(delivery, secret: new))
                #expect(try verifiedByPython(delivery, secret: old))
                #expect(!(try verifiedByPython(delivery, secret: WebhookSecret.generate().encoded)))
                let otherTenantsView = try await tenants[1].call(
                    .get, "/v1/webhooks/endpoints/\(endpoint.id)", as: .admin)
                #expect(otherTenantsView.status == .notFound)
                let deleted = try await acme.call(.delete, "/v1/webhooks/endpoints/\(endpoint.id)", as: .admin)
                #expect(deleted.status == .noContent)
                let gone = try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)", as: .admin)
                #expect(gone.status == .notFound)
            }
        }
    }

    @Test func everyWritePathAnnouncesOnlyWhatCommittedAndOnlyToItsTenant() async throws {
        try await withWebhookReceiver { receiver, url in
            try await Self.withWebhookApp(tenants: ["acme", "globex"]) { tenants, database in
                let (acme, globex) = (tenants[0], tenants[1])
                _ = try await Self.register(
                    acme, url: url,
                    events: Self.consentEvents + ["subject.erased", "objection.recorded", "request.due_soon"])
                let notice = try await acme.notice(purposes: ["marketing"])
                // Refused writes commit nothing, so announce nothing.
                let refused = try await acme.optIn(Self.ada, purposes: ["no_such_purpose"], noticeId: notice)
                #expect(refused.status == .unprocessableContent)
                // Another tenant's changes reach only its own endpoints (it has none).
                let globexNotice = try await globex.notice(purposes: ["marketing"])
                _ = try await globex.optIn(Self.ada, purposes: ["marketing"], noticeId: globexNotice)

                _ = try await acme.optIn(Self.ada, purposes: ["marketing"], noticeId: notice)
                let objected = try await acme.post(
                    "/v1/objections", as: .consentWrite,
                    ["subjects": [["subject": Self.ada, "channel": "whatsapp"]], "scope": "marketing"])
                #expect(objected.status == .ok || objected.status == .created, "\(objected.text)")
                let request = try await acme.post(
                    "/v1/requests", as: .dpo, ["subject": Self.ada, "channel": "whatsapp", "type": "access"])
                #expect(request.status == .created, "\(request.text)")
                let announced = try await database.withClient(\.app) { client in
                    try await ConsentDatabaseProbe.announceDueSoon(client: client, database: database)
                }
                #expect(announced == 1)
                let erased = try await acme.post(
                    "/v1/subjects/erase", as: .dpo, ["subject": Self.ada, "channel": "whatsapp"])
                #expect(erased.status == .ok, "\(erased.text)")

                try await receiver.until("the erasure") { $0.contains { $0.type == "subject.erased" } }
                let types = receiver.accepted.map(\.type)
                #expect(
                    types == [
                        "consent.granted", "objection.recorded", "consent.withdrawn", "request.due_soon",
                        "subject.erased",
                    ], "\(types)")
                let due = try #require(receiver.accepted.first { $0.type == "request.due_soon" })
                #expect(due.data["requestId"] is String && due.data["dueAt"] is String)
                #expect(
                    try await database.count(
                        "SELECT count(*)::int8 FROM webhook_events WHERE tenant_id <> '\(acme.tenant.tenant.id)'")
                        == 0)
            }
        }
    }
}

extension WebhookTests {
    /// An import announces each consent it created, once, as a single opt-in would: a new person from the batch's
    /// rows, a person already held from their own opt-in's events, a new person on two lines once per consent; a
    /// dry run and a second upload of the same file announce nothing.
    @Test func anImportAnnouncesEachConsentItCreatedOnce() async throws {
        try await withWebhookReceiver { receiver, url in
            try await Self.withWebhookApp { tenants, _ in
                let acme = tenants[0]
                _ = try await Self.register(acme, url: url, events: Self.consentEvents)
                let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
                let held = try await acme.optIn("+393331200013", purposes: ["marketing"], noticeId: notice)
                #expect(held.status == .created)
                let file = """
                    subject,purposes,collectedAt,source
                    +393331200011,marketing;shipping_update,2025-03-01T10:00:00Z,crm
                    +393331200012,marketing,2025-03-01T10:00:00Z,crm
                    not a number,marketing,2025-03-01T10:00:00Z,crm
                    +393331200013,shipping_update,2025-03-01T10:00:00Z,crm
                    +393331200014,marketing,2025-03-01T10:00:00Z,crm
                    +393331200014,shipping_update,2025-03-01T10:00:00Z,crm

                    """
                let dry = try await ImportTests.upload(acme, file, notice: notice, dryRun: true)
                _ = try await ImportTests.finished(acme, try dry.decoded(ImportTests.ImportReply.self).id)
                let reply = try await ImportTests.upload(acme, file, notice: notice)
                #expect(reply.status == .accepted, "\(reply.text)")
                let id = try reply.decoded(ImportTests.ImportReply.self).id
                let done = try await ImportTests.finished(acme, id)
                #expect(done.counts["granted"] == 5 && done.counts["invalid"] == 1, "\(done.counts)")
                try await receiver.until("the held person's grant and six imported") { $0.count >= 7 }
                let again = try await ImportTests.upload(acme, file, notice: notice)
                _ = try await ImportTests.finished(acme, try again.decoded(ImportTests.ImportReply.self).id)
                try await Task.sleep(for: .seconds(2))
                let got = receiver.accepted
                #expect(got.count == 7, "\(got.map { "\($0.type) \($0.data["purpose"] ?? "")" })")
                let consentIds = got.compactMap { $0.data["consentId"] as? String }
                #expect(consentIds.count == 7 && Set(consentIds).count == 7, "each consent announced once")
                let imported = got.dropFirst()
                #expect(
                    imported.allSatisfy { $0.type == "consent.granted" && $0.data["method"] as? String == "import" })
                // New people are announced from the batch's rows (with the import's id); a person already held, and
                // the second line of a new one, from their own opt-in's events.
                #expect(imported.filter { $0.data["importId"] as? String == id }.count >= 3)
                #expect(
                    imported.compactMap { $0.data["purpose"] as? String }.sorted() == [
                        "marketing", "marketing", "marketing", "shipping_update", "shipping_update",
                        "shipping_update",
                    ])
                #expect(Set(got.compactMap { $0.data["subjectRef"] as? String }).count == 4)
                #expect(!got.contains { String(decoding: $0.body, as: UTF8.self).contains("33312000") })
            }
        }
    }
}

/// The retention job's announcement, run as the service runs it.
enum ConsentDatabaseProbe {
    static func announceDueSoon(client: PostgresClient, database: TestDatabase) async throws -> Int {
        let store = ConsentDatabase(
            client: client, connector: DedicatedConnector(url: database.app),
            keyring: TenantKeyring(masterKey: .random32()),
            checkCache: nil, poolSize: 4)
        return try await store.announceRequestsDueSoon(withinDays: 40, logger: database.logger)
    }

    static func prune(_ database: TestDatabase) async throws -> Int {
        try await database.withClient(\.app) { client in
            let store = ConsentDatabase(
                client: client, connector: DedicatedConnector(url: database.app),
                keyring: TenantKeyring(masterKey: .random32()), checkCache: nil, poolSize: 4)
            return try await store.pruneWebhookDeliveries(olderThanDays: 30, logger: database.logger)
        }
    }
}

/// The DPO's side: a disabled endpoint is said on the overview and the webhooks page, its held deliveries go when
/// it is enabled from the console, and a delivery can be sent again from there.
@Suite struct ConsoleWebhookTests {
    @Test func theDPOIsToldOfADisabledEndpointEnablesItAndRedelivers() async throws {
        let givesUpAtOnce = WebhookRetrySchedule(
            firstDelay: .milliseconds(50), maximumDelay: .milliseconds(100), giveUpAfter: .zero, minimumAttempts: 2)
        let failing: @Sendable (Int) -> Int = { _ in 503 }
        try await withWebhookReceiver(answer: failing) { receiver, url in
            try await WebhookTests.withWebhookApp(retries: givesUpAtOnce, tenants: ["acme", "other"]) { tenants, _ in
                let (acme, other) = (tenants[0], tenants[1])
                let endpoint = try await WebhookTests.register(acme, url: url, events: WebhookTests.consentEvents)
                let notice = try await acme.notice(purposes: ["marketing"])
                _ = try await acme.optIn(WebhookTests.ada, purposes: ["marketing"], noticeId: notice)
                let console = try #require(try await ConsoleBrowser.signIn(acme).1)
                var page = try await console.get("/console/webhooks")
                for _ in 0..<100 where !page.text.contains("<strong>Disabled</strong>") {
                    try await Task.sleep(for: .milliseconds(100))
                    page = try await console.get("/console/webhooks")
                }
                #expect(page.status == .ok)
                #expect(page.text.contains(#"aria-current="page">Webhooks"#))
                #expect(page.text.contains("<strong>Disabled</strong>"), "\(page.text)")
                #expect(page.text.contains("HTTP 503"), "each attempt's status code")
                #expect(page.text.contains(" ms</li>"), "each attempt's latency")
                #expect(page.text.contains(#"class="problem" role="alert">1 webhook endpoint(s) disabled"#))
                let overview = try await console.get("/console")
                #expect(overview.text.contains("1 webhook endpoint(s) disabled after repeated failure"))
                // Another tenant's DPO sees none of it.
                let otherConsole = try #require(try await ConsoleBrowser.signIn(other).1)
                let otherPage = try await otherConsole.get("/console/webhooks")
                #expect(!otherPage.text.contains(endpoint.id) && otherPage.text.contains("No webhook endpoints."))
                #expect(
                    try await otherConsole.post("/console/webhooks/enable", ["endpoint": endpoint.id]).status
                        == .notFound)

                receiver.answer { _ in 200 }
                let enabled = try await console.post("/console/webhooks/enable", ["endpoint": endpoint.id])
                #expect(enabled.status == .ok && enabled.text.contains("Enabled"), "\(enabled.text)")
                let deliveryId = try #require(
                    try await acme.call(.get, "/v1/webhooks/endpoints/\(endpoint.id)/deliveries", as: .admin)
                        .decoded(WebhookTests.DeliveriesReply.self).deliveries.first?.id)
                let again = try await console.post(
                    "/console/webhooks/redeliver", ["endpoint": endpoint.id, "delivery": String(deliveryId)])
                #expect(again.status == .ok && again.text.contains("queued again"), "\(again.text)")
                try await receiver.until("the redelivery") { $0.contains { $0.answered == 200 } }
                let forged = try await console.post(
                    "/console/webhooks/redeliver", ["endpoint": endpoint.id, "delivery": String(deliveryId)],
                    csrf: "forged")
                #expect(forged.status == .forbidden)
            }
        }
    }
}
