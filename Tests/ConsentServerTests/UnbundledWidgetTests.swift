import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

/// `GET /v1/consent-sessions/{token}` with the notice's categories: one box each.
private struct CategorisedSessionReply: Decodable {
    struct Purpose: Decodable, Equatable {
        let key: String
        let name: String
    }
    struct Category: Decodable {
        let category: String
        let label: String
        let purposes: [Purpose]
    }
    struct Notice: Decodable {
        let text: String
        let purposes: [String]
    }
    let notice: Notice
    let categories: [Category]
    let expiresAt: String
}

/// `POST /v1/consent-sessions/{token}/decision` with what was ticked.
private struct CategorisedDecisionReply: Decodable {
    let accepted: Bool
    let categories: [String: Bool]
    let consents: [ConsentReply]
}

/// Unbundled collection: a notice that covers several categories is answered box by box, and a tick records only
/// its own category's purposes, so the order-updates box never grants marketing.
@Suite struct UnbundledWidgetTests {
    static let orderAndOffers = ["shipping_update", "account_update", "marketing"]

    @Test func aTwoCategoryNoticeIsShownAsABoxPerCategoryAndATickGrantsOnlyItsOwn() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393337000001", purposes: Self.orderAndOffers)
            let described = try await acme.raw(.get, "/v1/consent-sessions/\(token)")
            #expect(described.status == .ok, "\(described.text)")
            let session = try described.decoded(CategorisedSessionReply.self)
            #expect(session.notice.purposes == Self.orderAndOffers, "the existing fields stay")
            #expect(session.categories.map(\.category) == ["utility", "marketing"])
            #expect(
                session.categories.first?.purposes == [
                    .init(key: "shipping_update", name: "Shipping updates"),
                    .init(key: "account_update", name: "Account updates"),
                ])
            #expect(session.categories.map(\.label) == ["Shipping updates, Account updates", "Marketing"])

            let decided = try await acme.decide(token, #"{"categories": {"utility": true, "marketing": false}}"#)
            #expect(decided.status == .created, "\(decided.text)")
            let decision = try decided.decoded(CategorisedDecisionReply.self)
            #expect(decision.accepted && decision.categories == ["utility": true, "marketing": false])
            #expect(decision.consents.map(\.purpose) == ["shipping_update", "account_update"])
            for (purpose, reason) in [
                ("shipping_update", "consent_granted"), ("account_update", "consent_granted"),
                ("marketing", "no_consent"),
            ] {
                #expect(
                    try await acme.check("+393337000001", purpose: purpose).decoded(CheckReply.self).reason == reason,
                    "\(purpose)")
            }
            // The ticked box is on record: the session's collection is evidence for utility's purposes alone.
            #expect(
                try await database.count(
                    """
                    SELECT count(*)::int8 FROM consent_sessions s
                    JOIN consent_evidence e ON e.collection_id = s.collection_id
                    JOIN consents c ON c.id = e.consent_id
                    WHERE s.decision = 'accepted' AND c.purpose IN ('shipping_update', 'account_update')
                    """) == 2)
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE purpose = 'marketing'") == 0)
            #expect(
                try await acme.decide(token, #"{"categories": {"utility": true, "marketing": true}}"#).status == .gone)
            // Each box's answer is in the provenance: the export and the console show which was ticked.
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": "+393337000001", "channel": "whatsapp"])
            #expect(export.text.contains(#""boxes":{"marketing":false,"utility":true}"#), "\(export.text)")
        }
    }

    @Test func theOtherBoxAloneGrantsMarketingAlone() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let token = try await acme.session("+393337000002", purposes: Self.orderAndOffers)
            let decided = try await acme.decide(token, #"{"categories": {"marketing": true, "utility": false}}"#)
            #expect(try decided.decoded(CategorisedDecisionReply.self).consents.map(\.purpose) == ["marketing"])
            #expect(
                try await acme.check("+393337000002", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "no_consent")
            #expect(
                try await acme.check("+393337000002", purpose: "marketing").decoded(CheckReply.self).reason
                    == "consent_granted")
        }
    }

    @Test func acceptedForATwoCategoryNoticeIs422AndRecordsNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393337000003", purposes: Self.orderAndOffers)
            let before = try await database.footprint()
            // `false` too: a page that answers the whole notice at once has not asked per category.
            for body in [#"{"accepted": true}"#, #"{"accepted": false}"#] {
                let refused = try await acme.decide(token, body)
                #expect(refused.status == .unprocessableContent, "\(body): \(refused.text)")
                let error = try refused.error
                #expect(error.code == "categories_required" && error.field == "accepted", "\(error)")
                #expect(error.message.contains("utility, marketing"), "\(error.message)")
            }
            #expect(try await database.footprint() == before, "nothing recorded, the token unused")
            #expect(
                try await acme.check("+393337000003", purpose: "marketing").decoded(CheckReply.self).reason
                    == "no_consent")
            // The token still takes a decision that fits the notice.
            #expect(
                try await acme.decide(token, #"{"categories": {"utility": true, "marketing": false}}"#).status
                    == .created)
        }
    }

    @Test func categoriesThatAreNotExactlyTheNoticesAre422AndRecordNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393337000004", purposes: Self.orderAndOffers)
            let before = try await database.footprint()
            let cases: [(body: String, field: String)] = [
                (#"{"categories": {"utility": true}}"#, "categories"),
                (#"{"categories": {}}"#, "categories"),
                (#"{"categories": {"utility": true, "marketing": false, "authentication": false}}"#, "categories"),
                (#"{"categories": {"utility": true, "offers": true, "marketing": false}}"#, "categories"),
                (#"{"categories": {"Utility": true, "marketing": false}}"#, "categories"),
                (#"{"categories": {"utility": "yes", "marketing": false}}"#, "categories.utility"),
                (#"{"categories": {"utility": 1, "marketing": false}}"#, "categories.utility"),
                (#"{"categories": {"utility": null, "marketing": false}}"#, "categories.utility"),
                (#"{"categories": ["utility"]}"#, "categories"),
                (#"{"categories": null}"#, "categories"),
                (#"{"accepted": null, "categories": {"utility": true, "marketing": true}}"#, "accepted"),
                (#"{"accepted": true, "categories": {"utility": true, "marketing": false}}"#, "categories"),
                (#"{}"#, "categories"),
                (#"{"purposes": ["shipping_update"]}"#, "categories"),
            ]
            for (body, field) in cases {
                let refused = try await acme.decide(token, body)
                #expect(refused.status == .unprocessableContent, "\(body): \(refused.text)")
                #expect(try refused.error.field == field, "\(body): \(refused.text)")
            }
            let unknown = try await acme.decide(token, #"{"categories": {"utility": true, "offers": true}}"#)
            #expect(
                try unknown.error.message.contains("unknown: offers")
                    && unknown.error.message.contains(
                        "missing: marketing"),
                "\(unknown.text)")
            #expect(try await database.footprint() == before, "nothing recorded, the token unused")
            #expect(try await acme.raw(.get, "/v1/consent-sessions/\(token)").status == .ok)
        }
    }

    @Test func noBoxTickedIsARefusal() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393337000005", purposes: Self.orderAndOffers)
            let declined = try await acme.decide(token, #"{"categories": {"utility": false, "marketing": false}}"#)
            #expect(declined.status == .ok, "\(declined.text)")
            let decision = try declined.decoded(CategorisedDecisionReply.self)
            #expect(!decision.accepted && decision.consents.isEmpty)
            #expect(decision.categories == ["utility": false, "marketing": false])
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 0)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM consent_sessions WHERE decision = 'declined'")
                    == 1)
            #expect(
                try await acme.decide(token, #"{"categories": {"utility": true, "marketing": true}}"#).status == .gone)
        }
    }

    @Test func aSingleCategoryNoticeStillTakesAcceptedOrItsOneCategory() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let purposes = ["shipping_update", "account_update"]
            let first = try await acme.session("+393337000006", purposes: purposes)
            let session = try await acme.raw(.get, "/v1/consent-sessions/\(first)").decoded(
                CategorisedSessionReply.self)
            #expect(session.categories.map(\.category) == ["utility"])
            let accepted = try await acme.decide(first, #"{"accepted": true}"#)
            #expect(accepted.status == .created, "\(accepted.text)")
            let decision = try accepted.decoded(CategorisedDecisionReply.self)
            #expect(decision.consents.map(\.purpose) == purposes && decision.categories == ["utility": true])

            let second = try await acme.session("+393337000007", purposes: purposes)
            let ticked = try await acme.decide(second, #"{"categories": {"utility": true}}"#)
            #expect(try ticked.decoded(CategorisedDecisionReply.self).consents.map(\.purpose) == purposes)
            #expect(
                try await acme.check("+393337000007", purpose: "account_update").decoded(CheckReply.self).reason
                    == "consent_granted")
        }
    }

    @Test func theWidgetPostsOneAnswerPerCategoryFromUntickedBoxes() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let script = try await tenants[0].raw(.get, "/widget.js")
            #expect(script.body.count < 10 * 1024, "\(script.body.count) bytes")
            #expect(script.text.contains("box.checked = false"), "every box starts unticked")
            #expect(script.text.contains("{ categories: answers }"), "the decision names each category")
            #expect(!script.text.contains("{ accepted:"), "never one answer for the whole notice")
            #expect(script.text.contains("categories[i].label") && script.text.contains("textContent"))
        }
    }

    /// The demo checkout as `consentd dev` serves it, with the single-category notice `dev` made before the demo
    /// asked per category: the checkout shows the two-category notice anyway.
    @Test func theDemoCheckoutAsksForOrderUpdatesAndOffersApart() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await SeededTenant.make("demo", in: database)
        let admin = try #require(tenant.keys[.admin]).record.id
        let older = try await database.withClient(\.owner) { client in
            try await client.withTenantTransaction(tenant.tenant.id, logger: database.logger) { connection in
                try await NoticeStore.create(
                    tenantId: tenant.tenant.id, channel: .whatsapp, language: "en", text: DemoShop.noticeText,
                    purposes: ["shipping_update"],
                    actor: CallerIdentity(keyId: admin, tenantId: tenant.tenant.id, scopes: [.admin]), on: connection,
                    logger: database.logger
                ).id
            }
        }
        let shop = DemoShop(
            tenantId: tenant.tenant.id, writeKeyId: try #require(tenant.keys[.consentWrite]).record.id, noticeId: older)
        try await withDemoApp(database, shop: shop) { client in
            let demo = APIClient(client: client, tenant: tenant)
            var tokens: [String] = []
            for phone in ["+39 333 700 0008", "+39 333 700 0009"] {
                let page = try await demo.raw(
                    .post, "/demo/checkout", headers: [.contentType: "application/x-www-form-urlencoded"],
                    body: "phone=" + (phone.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
                #expect(page.status == .ok, "\(page.text)")
                let token = try #require(
                    page.text.firstMatch(of: #/data-token="([A-Za-z0-9_-]+)"/#).map { String($0.1) }, "\(page.text)")
                tokens.append(token)
            }
            for token in tokens {
                let session = try await demo.raw(.get, "/v1/consent-sessions/\(token)").decoded(
                    CategorisedSessionReply.self)
                #expect(session.notice.text == DemoShop.noticeText)
                #expect(session.categories.map(\.category) == ["utility", "marketing"])
            }
            let notices = try await demo.call(.get, "/v1/notices", as: .admin).decoded(NoticeListReply.self).notices
            #expect(
                notices.filter { $0.purposes == DemoShop.noticePurposes }.count == 1,
                "made once, then found: \(notices.map(\.purposes))")

            let decided = try await demo.decide(tokens[0], #"{"categories": {"utility": true, "marketing": false}}"#)
            #expect(decided.status == .created, "\(decided.text)")
            #expect(
                try await demo.check("+393337000008", purpose: "shipping_update").decoded(CheckReply.self).allowed)
            #expect(
                try await demo.check("+393337000008", purpose: "marketing").decoded(CheckReply.self).allowed == false)
        }
    }
}

/// `withRunningApp` with `consentd dev`'s demo shop, which the shared harness does not serve.
private func withDemoApp(
    _ database: TestDatabase, shop: DemoShop, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
) async throws {
    let client = PostgresClient(url: database.app, logger: database.logger)
    var dependencies = ServerDependencies(
        database: ConsentDatabase(
            client: client, connector: DedicatedConnector(url: database.app),
            keyring: TenantKeyring(masterKey: .random32()),
            checkCache: nil, poolSize: 20),
        schema: try MigrationRunner.bundled(), checkpointSigner: testCheckpointSigner)
    dependencies.demoShop = shop
    let app = try await ConsentApplication.make(dependencies, host: "127.0.0.1", port: 0, logger: database.logger)
    // As in `withRunningApp`: an error reaches the test only once the app has stopped, so a failure cannot hang it.
    let outcome: Result<Void, any Error> = try await app.test(.router) { client in
        do { return .success(try await body(client)) } catch { return .failure(error) }
    }
    try outcome.get()
}
