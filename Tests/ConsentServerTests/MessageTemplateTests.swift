import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import Testing

/// The template registry through the HTTP API and the real database: versions, lint, the review, checks that
/// name a template, and the platform's template webhooks.
@Suite struct MessageTemplateTests {
    struct TemplateReply: Decodable {
        struct Finding: Decodable {
            let rule: String
            let language: String
            let excerpt: String
            let start: Int
            let end: Int
        }
        struct Lint: Decodable { let findings: [Finding] }
        let id: String
        let name: String
        let language: String
        let version: Int
        let category: String
        let purpose: String
        let body: String
        let bodySha256: String
        let status: String
        let lint: Lint
        let createdAt: String
        let consistencyToken: String?
    }

    struct TemplateListReply: Decodable { let templates: [TemplateReply] }
    struct LintReply: Decodable { let findings: [TemplateReply.Finding] }

    static let shipped = "Hi {{1}}, your order {{2}} has shipped and will arrive on {{3}}."
    static let upsell = "Hi {{1}}, your order {{2}} has shipped! Use code SAVE10 for 10% off your next order."

    func register(
        _ api: APIClient, name: String = "order_shipped", language: String = "en_US", category: String = "utility",
        purpose: String = "shipping_update", body: String = MessageTemplateTests.shipped, header: [String: Any]? = nil
    ) async throws -> APIClient.Reply {
        var json: [String: Any] = [
            "channel": "whatsapp", "name": name, "language": language, "category": category, "purpose": purpose,
            "body": body,
        ]
        if let header { json["header"] = header }
        return try await api.post("/v1/templates", as: .admin, json)
    }

    func status(_ api: APIClient, _ id: String, _ body: [String: Any]) async throws -> APIClient.Reply {
        try await api.post("/v1/templates/\(id)/status", as: .admin, body)
    }

    func check(_ api: APIClient, _ subject: String, name: String = "order_shipped", token: String? = nil)
        async throws -> APIClient.Reply
    {
        var body: [String: Any] = [
            "subject": subject, "channel": "whatsapp", "template": ["name": name, "language": "en_US"],
        ]
        if let token { body["consistencyToken"] = token }
        return try await api.post("/v1/checks", as: .consentCheck, body)
    }

    @Test func registeringVersionsLintingAndTheReview() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let first = try await register(acme)
            #expect(first.status == .created, "\(first.text)")
            let v1 = try first.decoded(TemplateReply.self)
            #expect(v1.version == 1 && v1.status == "pending" && v1.lint.findings.isEmpty && v1.category == "utility")
            #expect(v1.bodySha256 == MessageTemplate.sha256Hex(Self.shipped))
            let second = try await register(acme, body: Self.upsell)
            let v2 = try second.decoded(TemplateReply.self)
            #expect(v2.version == 2 && v2.name == v1.name && v2.id != v1.id)
            let promotion = try #require(v2.lint.findings.first { $0.rule == "promotion" }, "\(second.text)")
            let scalars = Array(Self.upsell.unicodeScalars)
            var excerpt = String.UnicodeScalarView()
            excerpt.append(contentsOf: scalars[promotion.start..<promotion.end])
            #expect(String(excerpt) == promotion.excerpt)

            // A utility template names a utility purpose; unknown purposes and bad names change nothing.
            let audit = try await database.count("SELECT count(*)::int8 FROM audit_events")
            let mismatch = try await register(acme, name: "promo", purpose: "marketing")
            #expect(mismatch.status == .unprocessableContent)
            #expect(try mismatch.error.code == "category_mismatch")
            let unknown = try await register(acme, name: "promo", purpose: "no_such_purpose")
            #expect(try unknown.error.code == "unknown_purpose")
            for (field, bad) in [("name", "Order Shipped"), ("language", "english"), ("channel", "sms")] {
                var body: [String: Any] = [
                    "channel": "whatsapp", "name": "x", "language": "en", "category": "utility",
                    "purpose": "shipping_update", "body": "b",
                ]
                body[field] = bad
                let reply = try await acme.post("/v1/templates", as: .admin, body)
                #expect(reply.status == .unprocessableContent)
                #expect(try reply.error.field == field, "\(reply.text)")
            }
            let image = try await register(acme, name: "with_image", header: ["format": "image"])
            #expect(try image.decoded(TemplateReply.self).lint.findings.map(\.rule) == ["media_header"])
            #expect(try await database.count("SELECT count(*)::int8 FROM audit_events") == audit + 1)

            // Findings block approval unless overridden with a reason; both are audited.
            let blocked = try await status(acme, v2.id, ["status": "approved"])
            #expect(blocked.status == .unprocessableContent)
            #expect(try blocked.error.code == "lint_findings")
            let noReason = try await status(acme, v2.id, ["status": "approved", "override": true])
            #expect(try noReason.error.code == "lint_findings")
            let overridden = try await status(
                acme, v2.id, ["status": "approved", "override": true, "reason": "code is the order's own credit"])
            #expect(overridden.status == .ok)
            #expect(try overridden.decoded(TemplateReply.self).status == "approved")
            #expect(
                try await database.count(
                    """
                    SELECT count(*)::int8 FROM audit_events WHERE action = 'template.status_changed'
                      AND data->>'override' = 'true' AND data->>'reason' = 'code is the order''s own credit'
                    """) == 1)
            #expect(try await status(acme, v1.id, ["status": "approved"]).status == .ok)
            #expect(try await status(acme, UUID().uuidString, ["status": "approved"]).status == .notFound)
            #expect(try await status(acme, v1.id, ["status": "live"]).status == .unprocessableContent)

            // The lint route is not a template id: another method there is 405 naming POST alone.
            let options = try await acme.call(.options, "/v1/templates/lint", as: .admin)
            #expect(options.status == .methodNotAllowed && options.headers[.allow] == "POST", "\(options.text)")
            let get = try await acme.call(.get, "/v1/templates/lint", as: .admin)
            #expect(get.status == .methodNotAllowed && get.headers[.allow] == "POST", "\(get.text)")
            // Senders list what they may send; writers may not.
            let listed = try await acme.call(.get, "/v1/templates", as: .consentCheck)
            #expect(try listed.decoded(TemplateListReply.self).templates.count == 3)
            #expect(try await acme.call(.get, "/v1/templates/\(v1.id)", as: .consentCheck).status == .ok)
            #expect(try await acme.call(.get, "/v1/templates", as: .consentWrite).status == .forbidden)
            #expect(try await acme.post("/v1/templates", as: .consentCheck, [:]).status == .forbidden)

            // The wording is evidence: the schema refuses to change it, even for the superuser.
            await #expect(throws: (any Error).self) {
                _ = try await database.count(
                    "WITH u AS (UPDATE message_templates SET body = 'changed' RETURNING 1) SELECT count(*)::int8 FROM u"
                )
            }
            #expect(
                try await database.count(
                    "WITH u AS (UPDATE message_templates SET quality = 'GREEN' RETURNING 1) SELECT count(*)::int8 FROM u"
                )
                    == 3)
        }
    }

    @Test func aDraftIsLintedWithoutBeingStored() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let utility = try await acme.post(
                "/v1/templates/lint", as: .admin,
                [
                    "category": "utility", "language": "it",
                    "body": "Il tuo ordine è in viaggio. Ci manchi! Torna a trovarci.",
                ])
            let rules = try utility.decoded(LintReply.self).findings.map(\.rule)
            #expect(rules.contains("re_engagement"), "\(utility.text)")
            let marketing = try await acme.post(
                "/v1/templates/lint", as: .admin,
                ["category": "marketing", "language": "en", "body": Self.upsell, "header": ["format": "video"]])
            #expect(try marketing.decoded(LintReply.self).findings.isEmpty)
            let refund = try await acme.post(
                "/v1/templates/lint", as: .admin,
                ["category": "utility", "language": "en", "body": "Your refund for the discounted item was issued."])
            #expect(try refund.decoded(LintReply.self).findings.isEmpty, "\(refund.text)")
            #expect(try await database.count("SELECT count(*)::int8 FROM message_templates") == 0)
        }
    }

    @Test func aCheckByTemplateAnswersByItsStateAndCategory() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393332700001", purposes: ["shipping_update"], noticeId: notice)
            let v1 = try await register(acme).decoded(TemplateReply.self)
            let pendingAnswer = try await check(acme, "+393332700001").decoded(CheckReply.self)
            #expect(!pendingAnswer.allowed && pendingAnswer.reason == "template_not_approved")
            #expect(pendingAnswer.predictedError?.code == "template_not_approved")
            _ = try await status(acme, v1.id, ["status": "approved"])
            let approved = try await check(acme, "+393332700001").decoded(CheckReply.self)
            #expect(approved.allowed && approved.category == "utility")
            #expect(try approved.platform.pricingCategory == "utility")
            // A newer version under review does not stop the approved one.
            _ = try await register(acme, body: Self.shipped + " Track it in the app.")
            #expect(try await check(acme, "+393332700001").decoded(CheckReply.self).allowed)
            _ = try await status(acme, v1.id, ["status": "paused", "reason": "low quality"])
            let paused = try await check(acme, "+393332700001").decoded(CheckReply.self)
            #expect(
                !paused.allowed && paused.reason == "template_paused"
                    && paused.predictedError?.code == "template_paused")
            // No consent: the law's refusal comes first.
            #expect(try await check(acme, "+393332700002").decoded(CheckReply.self).reason == "no_consent")
            let unknown = try await check(acme, "+393332700001", name: "never_registered")
            #expect(unknown.status == .unprocessableContent)
            #expect(try unknown.error.code == "unknown_template")
            for body: [String: Any] in [
                ["subject": "+393332700001", "channel": "whatsapp"],
                [
                    "subject": "+393332700001", "channel": "whatsapp", "purpose": "shipping_update",
                    "template": ["name": "order_shipped", "language": "en_US"],
                ],
                [
                    "subject": "+393332700001", "channel": "whatsapp", "messageType": "session",
                    "template": ["name": "order_shipped", "language": "en_US"],
                ],
                [
                    "subject": "+393332700001", "channel": "sms",
                    "template": ["name": "order_shipped", "language": "en_US"],
                ],
            ] {
                let reply = try await acme.post("/v1/checks", as: .consentCheck, body)
                #expect(reply.status == .unprocessableContent, "\(body): \(reply.text)")
            }
            let batch = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                [
                    "subjects": ["+393332700001", "+393332700002"], "channel": "whatsapp",
                    "template": ["name": "order_shipped", "language": "en_US"],
                ])
            #expect(try batch.decoded(BatchCheckReply.self).results.map(\.reason) == ["template_paused", "no_consent"])
        }
    }

    /// The issue's "done when": the platform re-files a utility template as marketing, and the next check of it
    /// needs marketing consent and is priced as marketing; the platform pauses it, and the check says so. On
    /// another instance too, with the webhook's consistency token.
    @Test func thePlatformsTemplateWebhooksChangeTheNextCheckOnEveryInstance() async throws {
        try await withTwoCachedInstances("acme") { a, b, database in
            try await WhatsAppWebhookTests.configure(a)
            let notice = try await a.notice(purposes: ["shipping_update", "marketing"])
            _ = try await a.optIn("+393332800001", purposes: ["shipping_update"], noticeId: notice)
            _ = try await a.optIn("+393332800002", purposes: ["shipping_update", "marketing"], noticeId: notice)
            let v1 = try await register(a).decoded(TemplateReply.self)
            _ = try await status(a, v1.id, ["status": "approved"])
            for api in [a, b] {
                let answer = try await check(api, "+393332800001").decoded(CheckReply.self)
                #expect(answer.allowed)
                #expect(try answer.platform.pricingCategory == "utility")
            }
            // An impending change is not a change yet.
            let impending = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-category-impending"), to: a)
            #expect(try impending.decoded(WebhookDeliveryReply.self).templateChanges == 0)
            #expect(try await check(a, "+393332800001").decoded(CheckReply.self).allowed)

            let recategorised = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-category-update"), to: a)
            let delivery = try recategorised.decoded(WebhookDeliveryReply.self)
            #expect(delivery.templateChanges == 1, "\(recategorised.text)")
            let token = try #require(delivery.consistencyToken)
            for (api, token) in [(a, nil), (b, token)] as [(APIClient, String?)] {
                let noMarketing = try await check(api, "+393332800001", token: token).decoded(CheckReply.self)
                #expect(
                    !noMarketing.allowed && noMarketing.reason == "no_consent"
                        && noMarketing.category == "marketing")
                let withMarketing = try await check(api, "+393332800002", token: token).decoded(CheckReply.self)
                #expect(withMarketing.allowed)
                #expect(try withMarketing.platform.pricingCategory == "marketing")
                #expect(try withMarketing.platform.billable)
            }
            let paused = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-status-paused"), to: a)
            let pausedToken = try #require(try paused.decoded(WebhookDeliveryReply.self).consistencyToken)
            let answer = try await check(b, "+393332800002", token: pausedToken).decoded(CheckReply.self)
            #expect(
                !answer.allowed && answer.reason == "template_paused"
                    && answer.predictedError?.code == "template_paused")
            #expect(
                try await database.count(
                    """
                    SELECT count(*)::int8 FROM audit_events
                    WHERE action IN ('template.category_changed', 'template.status_changed')
                      AND actor = 'whatsapp_webhook'
                    """) == 2)
        }
    }

    @Test func theConsoleShowsVersionsFindingsAndThePlatformsChanges() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            _ = try await register(acme)
            _ = try await register(acme, body: Self.upsell)
            _ = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-status-paused"), to: acme)
            let (_, browser) = try await ConsoleBrowser.signIn(acme)
            let console = try #require(browser)
            let page = try await console.get("/console/templates")
            #expect(page.status == .ok)
            #expect(page.text.contains("order_shipped") && page.text.contains("version 2"))
            #expect(page.text.contains(#"<mark title="promotion">"#), "the finding is marked in the body")
            #expect(page.text.contains("<strong>paused</strong>"), "a paused version stands out")
            #expect(page.text.contains("status changed") && page.text.contains("<td>paused</td>"))
            #expect(page.text.contains(#"aria-current="page">Templates"#))
        }
    }

    /// The platform holds one template per name and language: its pause reaches the approved version a check would
    /// pick even when a newer version waits for review, and an older event Meta delivers late changes nothing.
    @Test func thePlatformsChangesReachTheVersionChecksUseAndStaleOnesAreIgnored() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393332900001", purposes: ["shipping_update"], noticeId: notice)
            let v1 = try await register(acme).decoded(TemplateReply.self)
            _ = try await status(acme, v1.id, ["status": "approved"])
            _ = try await register(acme, body: Self.shipped + " Reply HELP for help.")  // v2, pending review
            #expect(try await check(acme, "+393332900001").decoded(CheckReply.self).allowed)
            let paused = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-status-paused"), to: acme)
            #expect(try paused.decoded(WebhookDeliveryReply.self).templateChanges == 1)
            #expect(try await check(acme, "+393332900001").decoded(CheckReply.self).reason == "template_paused")
            // An approval raised before the pause (entry time 1764000300 < 1764000400), delivered after it.
            let late = try WhatsAppWebhookTests.fixture("template-status-paused")
                .replacingOccurrences(of: #""event": "PAUSED""#, with: #""event": "APPROVED""#)
                .replacingOccurrences(of: #""time": 1764000400"#, with: #""time": 1764000300"#)
            let stale = try await WhatsAppWebhookTests.deliver(late, to: acme)
            #expect(try stale.decoded(WebhookDeliveryReply.self).templateChanges == 0, "\(stale.text)")
            #expect(try await check(acme, "+393332900001").decoded(CheckReply.self).reason == "template_paused")
            // The re-categorisation reaches every version, the paused one a check falls back on included.
            _ = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("template-category-update"), to: acme)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM message_templates WHERE category = 'marketing'") == 2)
        }
    }
}
