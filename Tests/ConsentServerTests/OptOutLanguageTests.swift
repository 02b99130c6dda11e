import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

/// Issue 20: people stop in their own words, by a button, or in the app; each reaches every marketing purpose.
@Suite struct OptOutLanguageTests {
    static let person = "+393331005001"
    static let waId = "393331005001"

    func interaction(_ api: APIClient, _ text: String, at: Date = Date()) async throws -> APIClient.Reply {
        try await api.post(
            "/v1/interactions", as: .consentWrite,
            [
                "subject": Self.person, "channel": "whatsapp", "direction": "inbound",
                "occurredAt": RFC3339.format(at), "text": text,
            ])
    }

    /// The tenant's own marketing purpose beside the built-ins, all three granted.
    func seed(_ api: APIClient) async throws {
        let defined = try await api.call(
            .put, "/v1/purposes/loyalty_offers", as: .admin,
            json: #"{"name": "Loyalty offers", "category": "marketing"}"#)
        #expect(defined.status == .created, "\(defined.text)")
        let notice = try await api.notice(purposes: ["loyalty_offers", "marketing", "shipping_update"])
        let opted = try await api.optIn(
            Self.person, purposes: ["loyalty_offers", "marketing", "shipping_update"], noticeId: notice)
        #expect(opted.status == .created, "\(opted.text)")
    }

    func allowed(_ api: APIClient, _ purpose: String) async throws -> Bool {
        try await api.check(Self.person, purpose: purpose).decoded(CheckReply.self).allowed
    }

    /// A WhatsApp message from the person, as Meta sends it, to business number `numberId`.
    static func webhookMessage(
        id: String, at: Date, message: String, numberId: String = "106540352242922"
    ) -> String {
        #"""
        {"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
          "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"\#(numberId)"},
          "contacts":[{"profile":{"name":"Giulia"},"wa_id":"\#(waId)"}],
          "messages":[{"from":"\#(waId)","id":"\#(id)","timestamp":"\#(Int(at.timeIntervalSince1970))",\#(message)}]}}]}]}
        """#
    }

    @Test func aPhraseWithdrawsEveryMarketingPurposeAndOpensAReviewTheDPOResolves() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await seed(acme)
            let reply = try await interaction(acme, "Buongiorno, non voglio più ricevere messaggi promozionali grazie")
            #expect(reply.status == .created, "\(reply.text)")
            let body = try reply.decoded(OptOutInteractionReply.self)
            #expect(body.optOut == "phrase")
            #expect(body.revoked.map(\.purpose).sorted() == ["loyalty_offers", "marketing"])
            #expect(try await allowed(acme, "loyalty_offers") == false)
            #expect(try await allowed(acme, "shipping_update") == true, "order updates wait for the DPO")

            let queue = try await acme.call(.get, "/v1/opt-out-reviews", as: .dpo)
            #expect(queue.status == .ok, "\(queue.text)")
            let reviews = try queue.decoded(OptOutReviewList.self).reviews
            #expect(reviews.count == 1 && reviews.first?.id == body.optOutReviewId)
            #expect(reviews.first?.text?.contains("non voglio più ricevere") == true, "the DPO reads the message")
            #expect(try await acme.call(.get, "/v1/opt-out-reviews", as: .consentWrite).status == .forbidden)

            let id = try #require(reviews.first?.id)
            let resolved = try await acme.post(
                "/v1/opt-out-reviews/\(id)/resolve", as: .dpo, ["resolution": "withdraw_all"])
            #expect(resolved.status == .ok, "\(resolved.text)")
            #expect(try await allowed(acme, "shipping_update") == false)
            let again = try await acme.post("/v1/opt-out-reviews/\(id)/resolve", as: .dpo, ["resolution": "keep"])
            #expect(try again.status == .conflict && again.error.code == "review_resolved")
            let bad = try await acme.post("/v1/opt-out-reviews/\(id)/resolve", as: .dpo, ["resolution": "maybe"])
            #expect(bad.status == .unprocessableContent)
            #expect(
                try await acme.call(.get, "/v1/opt-out-reviews", as: .dpo).decoded(OptOutReviewList.self).reviews
                    .isEmpty)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action IN ('opt_out.review_opened', 'opt_out.review_resolved')"
                ) == 2)
        }
    }

    @Test(arguments: [
        ("STOP", "keyword"), ("cancellami", "keyword"), ("abbestellen", "keyword"), ("désinscription", "keyword"),
        ("darme de baja", "keyword"), ("please stop sending me these", "phrase"),
        ("keine Nachrichten mehr bitte", "phrase"),
    ])
    func theSixLanguagesAreHeard(text: String, kind: String) async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await seed(acme)
            let reply = try await interaction(acme, text).decoded(OptOutInteractionReply.self)
            #expect(reply.optOut == kind)
            #expect(try await allowed(acme, "marketing") == false)
            #expect(try await allowed(acme, "shipping_update") == (kind == "phrase"))
        }
    }

    @Test func ordinaryMessagesAnswerNoOptOut() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await seed(acme)
            for text in ["non fermate la consegna", "the stop button doesn't work", "stop by the shop tomorrow"] {
                let reply = try await interaction(acme, text)
                #expect(reply.text.contains(#""optOut":null"#), "\(text): \(reply.text)")
            }
            #expect(try await allowed(acme, "marketing") == true)
        }
    }

    @Test func theStopPromotionsButtonAndTheAppsStopReachTheTenantsMarketingPurposes() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            try await seed(acme)
            let tap = Self.webhookMessage(
                id: "wamid.button-stop", at: Date(),
                message: #""type":"button","button":{"payload":"STOP_PROMOS","text":"Stop promotions"}"#)
            let delivered = try await WhatsAppWebhookTests.deliver(tap, to: acme)
            #expect(delivered.status == .ok, "\(delivered.text)")
            #expect(delivered.text.contains(#""optOuts":["button"]"#), "\(delivered.text)")
            #expect(try await allowed(acme, "marketing") == false)
            #expect(try await allowed(acme, "loyalty_offers") == false)
            #expect(try await allowed(acme, "shipping_update") == true)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM subjects WHERE marketing_stopped_at IS NOT NULL")
                    == 1, "the platform's own stop is recorded for the checks")
        }
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            try await seed(acme)
            let stop = try WhatsAppWebhookTests.fixture("user-preferences-stop")
                .replacingOccurrences(of: "393331005004", with: Self.waId)
            let delivered = try await WhatsAppWebhookTests.deliver(stop, to: acme)
            #expect(delivered.text.contains(#""optOuts":["platform"]"#), "\(delivered.text)")
            #expect(try await allowed(acme, "loyalty_offers") == false, "the tenant's own marketing purpose too")
            #expect(try await allowed(acme, "shipping_update") == true)
        }
    }

    @Test func messagesForAnotherBusinessNumberOrOlderThanTheReplayWindowAreRefused() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let configured = try await acme.post(
                "/v1/settings/whatsapp", as: .admin,
                [
                    "appSecret": WhatsAppWebhookTests.appSecret, "verifyToken": WhatsAppWebhookTests.verifyToken,
                    "phoneNumberIds": ["106540352242922"],
                ], method: .put)
            #expect(configured.status == .ok, "\(configured.text)")
            let text = #""type":"text","text":{"body":"STOP"}"#
            let foreign = try await WhatsAppWebhookTests.deliver(
                Self.webhookMessage(id: "wamid.a", at: Date(), message: text, numberId: "999"), to: acme)
            let stale = try await WhatsAppWebhookTests.deliver(
                Self.webhookMessage(id: "wamid.b", at: Date().addingTimeInterval(-8 * 86_400), message: text),
                to: acme)
            for reply in [foreign, stale] {
                #expect(reply.status == .ok && reply.text.contains(#""refused":1"#), "\(reply.text)")
            }
            #expect(try await database.count("SELECT count(*)::int8 FROM interactions") == 0)
            let ours = try await WhatsAppWebhookTests.deliver(
                Self.webhookMessage(id: "wamid.c", at: Date(), message: text), to: acme)
            #expect(ours.text.contains(#""received":1"#), "\(ours.text)")
            let bad = try await acme.post(
                "/v1/settings/whatsapp", as: .admin,
                [
                    "appSecret": WhatsAppWebhookTests.appSecret, "verifyToken": WhatsAppWebhookTests.verifyToken,
                    "phoneNumberIds": ["not-a-number"],
                ], method: .put)
            #expect(bad.status == .unprocessableContent)
        }
    }

    @Test func aConfirmationConfirmsOnlyWhatWasAskedBeforeItAndAButtonOnlyItsConsent() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            var pending = APIClient.provenance
            pending["method"] = "double_opt_in"
            let asked = try await acme.optIn(
                Self.person, purposes: ["marketing", "shipping_update"], noticeId: notice, provenance: pending)
            let consents = try asked.decoded(OptInReply.self).consents
            #expect(consents.map(\.status) == ["pending", "pending"])

            // A "YES" written before the request was made (delivered late, or replayed) confirms nothing.
            let early = try await interaction(acme, "YES", at: Date().addingTimeInterval(-120))
            #expect(try early.decoded(OptOutInteractionReply.self).confirmed.isEmpty, "\(early.text)")

            // The button names one consent: only that one is confirmed.
            let shipping = try #require(consents.last?.id)
            let tap = Self.webhookMessage(
                id: "wamid.confirm", at: Date(),
                message: #""type":"button","button":{"payload":"confirm:\#(shipping)","text":"Yes"}"#)
            let delivered = try await WhatsAppWebhookTests.deliver(tap, to: acme)
            #expect(delivered.text.contains(#""confirmations":1"#), "\(delivered.text)")
            #expect(try await allowed(acme, "shipping_update") == true)
            #expect(try await allowed(acme, "marketing") == false)
        }
    }
}

struct OptOutInteractionReply: Decodable {
    let revoked: [RevokedReply]
    let confirmed: [ConsentReply]
    let optOut: String?
    let optOutReviewId: String?
}

struct OptOutReviewList: Decodable {
    struct Review: Decodable {
        let id: String
        let subjectRef: String
        let channel: String
        let text: String?
        let resolution: String?
    }
    let reviews: [Review]
}
