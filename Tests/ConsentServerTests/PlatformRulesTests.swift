import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import Synchronization
import Testing

/// The platform's dated rules through `POST /v1/checks`, against the real database: each row of the domain brief's
/// pricing table at the edges of its period, the free entry point, the marketing stop, `issue_resolution`, `sendAt`
/// and the channels without a window.
@Suite struct PlatformRulesTests {
    /// The time checks answer at, moved by the test; interactions keep their own (past) times.
    final class TestClock: Sendable {
        let now = Mutex(Date())
        func set(_ date: Date) { now.withLock { $0 = date } }
        var read: @Sendable () -> Date { { [self] in now.withLock { $0 } } }
    }

    static func utc(_ text: String) -> Date {
        guard let date = RFC3339.parse(text) else { fatalError("bad test date \(text)") }
        return date
    }

    func interaction(
        _ api: APIClient, _ subject: String, at time: Date, entryPoint: String? = nil, channel: String = "whatsapp"
    ) async throws -> APIClient.Reply {
        var body: [String: Any] = [
            "subject": subject, "channel": channel, "direction": "inbound", "occurredAt": RFC3339.format(time),
        ]
        if let entryPoint { body["entryPoint"] = entryPoint }
        return try await api.post("/v1/interactions", as: .consentWrite, body)
    }

    func check(
        _ api: APIClient, _ subject: String, purpose: String, messageType: String = "template",
        channel: String = "whatsapp", extra: [String: Any] = [:]
    ) async throws -> CheckReply {
        var body: [String: Any] = [
            "subject": subject, "channel": channel, "purpose": purpose, "messageType": messageType,
        ]
        body.merge(extra) { $1 }
        let reply = try await api.post("/v1/checks", as: .consentCheck, body)
        guard reply.status == .ok else { throw APIClient.Unexpected(reply.text) }
        return try reply.decoded(CheckReply.self)
    }

    /// The brief's table, transcribed: is it paid? Columns: marketing template inside and outside the window,
    /// authentication inside and outside, utility inside and outside, a free-form (service) message inside.
    static let table: [(at: String, rule: String, paid: [Bool])] = [
        ("2025-06-30T23:59:59Z", "whatsapp-2019", [false, true, false, true, false, true, false]),
        ("2025-07-01T00:00:00Z", "whatsapp-2025-07", [true, true, true, true, false, true, false]),
        ("2026-09-30T23:59:59Z", "whatsapp-2025-07", [true, true, true, true, false, true, false]),
        ("2026-10-01T00:00:00Z", "whatsapp-2026-10", [true, true, true, true, true, true, true]),
    ]

    @Test func eachRowOfTheBriefsPricingTable() async throws {
        let clock = TestClock()
        try await withTenants(["acme"], checkClock: clock.read) { tenants, _ in
            let acme = tenants[0]
            let purposes = ["marketing", "authentication", "shipping_update"]
            let notice = try await acme.notice(purposes: purposes)
            for (row, (text, rule, paid)) in Self.table.enumerated() {
                let at = Self.utc(text)
                let inside = "+39333200\(row)001"
                let outside = "+39333200\(row)002"
                let fromAd = "+39333200\(row)003"
                for person in [inside, outside, fromAd] {
                    let optIn = try await acme.optIn(person, purposes: purposes, noticeId: notice)
                    #expect(optIn.status == .created, "\(optIn.text)")
                }
                #expect(try await interaction(acme, inside, at: at.addingTimeInterval(-3600)).status == .created)
                // From an ad 30 hours before: the window has closed, the 72-hour entry point has not.
                let ad = try await interaction(acme, fromAd, at: at.addingTimeInterval(-30 * 3600), entryPoint: "ad")
                #expect(ad.status == .created, "\(ad.text)")
                clock.set(at)
                let asked: [(String, String, String, String)] = [
                    (inside, "marketing", "template", "marketing"), (outside, "marketing", "template", "marketing"),
                    (inside, "authentication", "template", "authentication"),
                    (outside, "authentication", "template", "authentication"),
                    (inside, "shipping_update", "template", "utility"),
                    (outside, "shipping_update", "template", "utility"),
                    (inside, "shipping_update", "session", "service"),
                ]
                for ((person, purpose, type, category), expected) in zip(asked, paid) {
                    let answer = try await check(acme, person, purpose: purpose, messageType: type)
                    let label = "\(text) \(purpose) \(type) \(person == inside ? "inside" : "outside")"
                    #expect(answer.allowed, "\(label)")
                    #expect(answer.category == category, "\(label)")
                    let platform = try answer.platform
                    #expect(platform.billable == expected, "\(label)")
                    #expect(platform.pricingCategory == category, "\(label)")
                    #expect(platform.pricingRule == rule, "\(label)")
                    #expect(platform.serviceWindow.open == (person == inside), "\(label)")
                }
                // The entry point: free from 2025-07-01 on; before, a template outside the window is paid.
                let adAnswer = try await check(acme, fromAd, purpose: "marketing")
                let free = row > 0
                #expect(try adAnswer.platform.freeEntryPoint.open == free, "\(text)")
                #expect(try adAnswer.platform.billable == !free, "\(text)")
                #expect(try adAnswer.platform.pricingCategory == (free ? "free_entry_point" : "marketing"), "\(text)")
                #expect(try adAnswer.platform.serviceWindow.open == false)
                // Free-form outside the window: the platform's 131047.
                let late = try await check(acme, outside, purpose: "shipping_update", messageType: "session")
                #expect(!late.allowed && late.reason == "service_window_closed")
                #expect(late.predictedError?.code == "131047")
                #expect(try late.platform.pricingCategory == nil && late.platform.billable == false)
            }
        }
    }

    @Test func sendAtAsksAboutTheWindowAtTheTimeOfSending() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393332100001", purposes: ["shipping_update"], noticeId: notice)
            let wrote = Date().addingTimeInterval(-23 * 3600)
            #expect(try await interaction(acme, "+393332100001", at: wrote).status == .created)
            let now = try await check(acme, "+393332100001", purpose: "shipping_update", messageType: "session")
            #expect(now.allowed)
            #expect(try now.serviceWindow.open)
            let later = RFC3339.format(Date().addingTimeInterval(2 * 3600))
            let inTwoHours = try await check(
                acme, "+393332100001", purpose: "shipping_update", messageType: "session", extra: ["sendAt": later])
            #expect(!inTwoHours.allowed && inTwoHours.reason == "service_window_closed")
            #expect(inTwoHours.predictedError?.code == "131047")
            for bad in [
                "tomorrow", RFC3339.format(Date().addingTimeInterval(8 * 86400)),
                RFC3339.format(Date().addingTimeInterval(-3600)),
            ] {
                let reply = try await acme.post(
                    "/v1/checks", as: .consentCheck,
                    ["subject": "+393332100001", "channel": "whatsapp", "purpose": "shipping_update", "sendAt": bad])
                #expect(reply.status == .unprocessableContent, "\(bad): \(reply.text)")
                #expect(try reply.error.field == "sendAt")
            }
        }
    }

    @Test func smsAndEmailHaveNoWindowPricingOrSessionMessages() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice("sms", purposes: ["shipping_update"])
            _ = try await acme.optIn("+393332200001", channel: "sms", purposes: ["shipping_update"], noticeId: notice)
            let answer = try await check(acme, "+393332200001", purpose: "shipping_update", channel: "sms")
            #expect(answer.allowed && answer.whatsapp == nil && answer.category == "utility")
            let audit = try await database.count("SELECT count(*)::int8 FROM audit_events")
            for channel in ["sms", "email"] {
                let subject = channel == "sms" ? "+393332200001" : "someone@example.org"
                let reply = try await acme.post(
                    "/v1/checks", as: .consentCheck,
                    ["subject": subject, "channel": channel, "purpose": "shipping_update", "messageType": "session"])
                #expect(reply.status == .unprocessableContent)
                #expect(try reply.error.code == "session_not_applicable")
                let batch = try await acme.post(
                    "/v1/checks/batch", as: .consentCheck,
                    ["subjects": [subject], "channel": channel, "purpose": "shipping_update", "messageType": "session"])
                #expect(batch.status == .unprocessableContent)
                #expect(try batch.error.code == "session_not_applicable")
            }
            let onSms = try await interaction(acme, "+393332200001", at: Date(), entryPoint: "ad", channel: "sms")
            #expect(onSms.status == .unprocessableContent)
            #expect(try onSms.error.field == "entryPoint")
            #expect(try await database.count("SELECT count(*)::int8 FROM audit_events") == audit)
            let batch = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                ["subjects": ["+393332200001", "+393332200009"], "channel": "sms", "purpose": "shipping_update"])
            let results = try batch.decoded(BatchCheckReply.self).results
            #expect(results.map(\.allowed) == [true, false])
            #expect(results.allSatisfy { $0.billable == nil && $0.pricingCategory == nil && $0.category == "utility" })
            #expect(!batch.text.contains("billable") && !batch.text.contains("pricingCategory"))
        }
    }

    @Test func theBatchCarriesCategoryPricingAndBillablePerSubject() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393332300001", purposes: ["marketing"], noticeId: notice)
            let reply = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                ["subjects": ["+393332300001", "+393332300002"], "channel": "whatsapp", "purpose": "marketing"])
            let results = try reply.decoded(BatchCheckReply.self).results
            #expect(results.count == 2)
            #expect(results[0].allowed && results[0].billable == true && results[0].pricingCategory == "marketing")
            #expect(!results[1].allowed && results[1].billable == false && results[1].pricingCategory == nil)
            #expect(reply.text.contains(#""pricingCategory":null"#))
            #expect(results.allSatisfy { $0.category == "marketing" })
        }
    }

    @Test func aWhatsAppMarketingStopHoldsForEveryMarketingPurposeUntilANewOptIn() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            let defined = try await acme.post(
                "/v1/purposes/newsletter", as: .admin, ["name": "Newsletter", "category": "marketing"], method: .put)
            #expect(defined.status == .created, "\(defined.text)")
            let notice = try await acme.notice(purposes: ["newsletter", "marketing", "shipping_update"])
            let person = "+393331005004"  // the fixture's wa_id
            _ = try await acme.optIn(
                person, purposes: ["newsletter", "marketing", "shipping_update"], noticeId: notice)
            #expect(try await check(acme, person, purpose: "newsletter").allowed)
            let stop = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("user-preferences-stop"), to: acme)
            #expect(stop.status == .ok, "\(stop.text)")
            // The stop withdraws every marketing-category purpose, the tenant's own too (issue 20; until then only
            // `marketing` was withdrawn and the check answered `marketing_stopped` for the newsletter).
            #expect(try await check(acme, person, purpose: "marketing").reason == "consent_withdrawn")
            let newsletter = try await check(acme, person, purpose: "newsletter")
            #expect(!newsletter.allowed && newsletter.reason == "consent_withdrawn")
            #expect(try await check(acme, person, purpose: "shipping_update").allowed, "utility is not marketing")
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action = 'preference.marketing_stopped'") == 1)
            // The person's export holds the stop (GDPR art. 15).
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": person, "channel": "whatsapp"])
            #expect(export.text.contains(#""marketingStoppedAt""#), "\(export.status)")
            // An opt-in given before the stop and recorded after it (an import of an old list) does not lift it.
            var old = APIClient.provenance
            old["method"] = "import"
            let imported = try await acme.optIn(person, purposes: ["marketing"], noticeId: notice, provenance: old)
            #expect(imported.status == .created, "\(imported.text)")
            #expect(try imported.decoded(OptInReply.self).consents.map(\.status) == ["superseded"])
            #expect(try await check(acme, person, purpose: "marketing").reason == "consent_withdrawn")
            // One given after the stop lifts it for what it grants. The platform dates the stop to the second, and
            // the consent is given two seconds later by the page's own clock.
            var fresh = APIClient.provenance
            fresh["collectedAt"] = RFC3339.format(Date().addingTimeInterval(2))
            let given = try await acme.optIn(person, purposes: ["marketing"], noticeId: notice, provenance: fresh)
            #expect(given.status == .created, "\(given.text)")
            #expect(try await check(acme, person, purpose: "marketing").allowed)
            #expect(try await check(acme, person, purpose: "newsletter").reason == "consent_withdrawn")
            // The platform's stop stays noted on the person: what the checks read for 131050.
            #expect(
                try await database.count("SELECT count(*)::int8 FROM subjects WHERE marketing_stopped_at IS NOT NULL")
                    == 1)
        }
    }

    @Test func aMessageFromAnAdOpensTheFreeEntryPoint() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await WhatsAppWebhookTests.configure(acme)
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            let person = "+393331005007"  // the referral fixture's wa_id
            _ = try await acme.optIn(person, purposes: ["marketing", "shipping_update"], noticeId: notice)
            let delivered = try await WhatsAppWebhookTests.deliver(
                try WhatsAppWebhookTests.fixture("referral-message"), to: acme)
            #expect(delivered.status == .ok, "\(delivered.text)")
            let answer = try await check(acme, person, purpose: "marketing")
            let platform = try answer.platform
            #expect(answer.allowed && platform.freeEntryPoint.open && !platform.billable)
            #expect(platform.pricingCategory == "free_entry_point")
            #expect(platform.freeEntryPoint.closesAt != nil)
            // The ad itself is not kept: only that the message came from one.
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE data->>'fromAd' = 'true'") == 1)
            // A plain message opens the window, not the entry point.
            _ = try await acme.optIn("+393332400001", purposes: ["marketing"], noticeId: notice)
            #expect(try await interaction(acme, "+393332400001", at: Date()).status == .created)
            let plain = try await check(acme, "+393332400001", purpose: "marketing")
            #expect(try !plain.platform.freeEntryPoint.open && plain.platform.billable)
        }
    }

    @Test func issueResolutionNeedsAnEarlierConversation() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["issue_resolution"])
            for person in ["+393332500001", "+393332500002", "+393332500003"] {
                _ = try await acme.optIn(person, purposes: ["issue_resolution"], noticeId: notice)
            }
            #expect(
                try await interaction(acme, "+393332500001", at: Date().addingTimeInterval(-3 * 86400)).status
                    == .created)
            #expect(
                try await interaction(acme, "+393332500002", at: Date().addingTimeInterval(-31 * 86400)).status
                    == .created)
            #expect(try await check(acme, "+393332500001", purpose: "issue_resolution").allowed)
            for person in ["+393332500002", "+393332500003"] {
                let answer = try await check(acme, person, purpose: "issue_resolution")
                #expect(!answer.allowed && answer.reason == "no_prior_conversation" && answer.predictedError == nil)
            }
        }
    }

    /// A tenant re-files a purpose as marketing: the next check needs marketing consent, from the cache on this
    /// instance and, with the definition's token, on another.
    @Test func reCategorisingAPurposeChangesTheNextCheck() async throws {
        try await withTwoCachedInstances("acme") { a, b, database in
            let tips = try await a.post(
                "/v1/purposes/tips", as: .admin, ["name": "Care tips", "category": "utility"], method: .put)
            #expect(tips.status == .created, "\(tips.text)")
            #expect(try await interaction(a, "+393332600001", at: Date()).status == .created)
            for api in [a, b] {
                let reply = try await check(api, "+393332600001", purpose: "tips", messageType: "session")
                #expect(reply.allowed && reply.category == "service", "no consent needed for a utility reply")
            }
            let refiled = try await a.post(
                "/v1/purposes/tips", as: .admin, ["name": "Care tips", "category": "marketing"], method: .put)
            #expect(refiled.status == .ok, "\(refiled.text)")
            let token = try refiled.decoded(PurposeDefinitionReply.self).consistencyToken
            let here = try await check(a, "+393332600001", purpose: "tips", messageType: "session")
            #expect(!here.allowed && here.reason == "no_consent")
            let there = try await check(
                b, "+393332600001", purpose: "tips", messageType: "session", extra: ["consistencyToken": token])
            #expect(!there.allowed && there.reason == "no_consent")
        }
    }
}

/// `PUT /v1/purposes/{key}`.
struct PurposeDefinitionReply: Decodable {
    let key: String
    let category: String
    let consistencyToken: String
}
