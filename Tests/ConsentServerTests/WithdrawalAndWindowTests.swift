import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

@Suite struct WithdrawalTests {
    @Test func withdrawingOnePurposeThenAllKeepsHistory() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing", "account_update"])
            _ = try await acme.optIn(
                "+393331234567", purposes: ["shipping_update", "marketing", "account_update"], noticeId: notice)

            let one = try await acme.post(
                "/v1/revocations", as: .consentWrite,
                ["subject": "+39 333 123 4567", "channel": "whatsapp", "purposes": ["marketing"]])
            #expect(one.status == .ok, "\(one.text)")
            let revocation = try one.decoded(RevocationReply.self)
            let revoked = revocation.revoked
            #expect(revoked.map(\.purpose) == ["marketing"])
            #expect(revoked.first.flatMap { RFC3339.parse($0.revokedAt) } != nil)
            #expect(revocation.consistencyToken.hasPrefix("ct1_"))

            let check = try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self)
            #expect(check.allowed == false && check.reason == "consent_withdrawn")
            #expect(check.consentId != nil && check.consentId == revoked.first?.id)
            #expect(check.revokedAt != nil && check.revokedAt == revoked.first?.revokedAt)
            #expect(
                try await acme.check("+393331234567", purpose: "shipping_update").decoded(CheckReply.self).allowed
                    == true)

            let rest = try await acme.post(
                "/v1/revocations", as: .consentWrite,
                ["subject": "+393331234567", "channel": "whatsapp", "source": "dpo"])
            #expect(
                try rest.decoded(RevocationReply.self).revoked.map(\.purpose) == ["account_update", "shipping_update"])
            let nothing = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393331234567", "channel": "whatsapp"])
            #expect(try nothing.status == .ok && nothing.decoded(RevocationReply.self).revoked.isEmpty)
            let nobody = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+15550000000", "channel": "sms"])
            #expect(try nobody.status == .ok && nobody.decoded(RevocationReply.self).revoked.isEmpty)

            // A later opt-in (collected after the withdrawal) is a new consent; the withdrawn one stays as it was.
            let again = try await acme.optIn(
                "+393331234567", purposes: ["marketing"], noticeId: notice, provenance: APIClient.freshProvenance)
            let newId = try again.decoded(OptInReply.self).consents.first?.id
            #expect(newId != nil && newId != revoked.first?.id)
            #expect(
                try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self).reason
                    == "consent_granted")
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE purpose = 'marketing'") == 2)
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE revoke_source = 'dpo'") == 2)
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE revoke_source = 'api'") == 1)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.withdrawn'")
                    == 3)
        }
    }

    @Test func badWithdrawalsChangeNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            let cases: [([String: Any], String, String)] = [
                (
                    ["subject": "+393331234567", "channel": "whatsapp", "purposes": ["no_such_purpose"]],
                    "unknown_purpose", "purposes"
                ),
                (
                    ["subject": "+393331234567", "channel": "whatsapp", "purposes": [String]()], "invalid_field",
                    "purposes"
                ),
                (["subject": "+393331234567", "channel": "whatsapp", "source": "rumour"], "invalid_field", "source"),
                (["subject": "not a number", "channel": "whatsapp"], "invalid_field", "subject"),
                (["channel": "whatsapp"], "invalid_field", "subject"),
            ]
            let before = try await database.footprint()
            for (body, code, field) in cases {
                let reply = try await acme.post("/v1/revocations", as: .consentWrite, body)
                #expect(
                    try reply.status == .unprocessableContent && reply.error.code == code && reply.error.field == field,
                    "\(reply.text)")
            }
            #expect(try await database.footprint() == before)
            #expect(
                try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self).allowed == true)
        }
    }
}

@Suite struct InteractionTests {
    func interaction(
        _ acme: APIClient, _ subject: String, at time: Date, text: String? = nil, channel: String = "whatsapp"
    )
        async throws -> APIClient.Reply
    {
        var body: [String: Any] = [
            "subject": subject, "channel": channel, "direction": "inbound", "occurredAt": RFC3339Text.format(time),
        ]
        if let text { body["text"] = text }
        return try await acme.post("/v1/interactions", as: .consentWrite, body)
    }

    @Test func anInboundMessageOpensTheWindowForSessionMessages() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393331234567", purposes: ["shipping_update"], noticeId: notice)
            let sent = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 60).rounded(.down))
            let reply = try await interaction(acme, "+393331234567", at: sent, text: "Where is my parcel?")
            #expect(reply.status == .created, "\(reply.text)")
            let recorded = try reply.decoded(InteractionReply.self)
            let window = recorded.serviceWindow
            #expect(window.open == true)
            #expect(window.closesAt == RFC3339Text.format(sent.addingTimeInterval(24 * 3600)))
            #expect(recorded.revoked.isEmpty)

            let session = try await acme.check("+393331234567", purpose: "shipping_update", messageType: "session")
                .decoded(CheckReply.self)
            #expect(session.allowed == true && session.reason == "service_window_open")
            let template = try await acme.check("+393331234567", purpose: "shipping_update").decoded(CheckReply.self)
            // Since 2026-10-01 a utility template is paid inside the window too (docs/messaging-rules.md); the
            // dated rules themselves are tested at their edges in PricingPeriodTests.
            #expect(template.allowed == true)
            #expect(try template.billable == true)
            #expect(try template.platform.pricingCategory == "utility")
            #expect(try template.platform.pricingRule == "whatsapp-2026-10")
            // No consent is needed to answer a utility question inside the window; a marketing reply needs it.
            let unconsented = try await acme.check("+393331234567", purpose: "account_update", messageType: "session")
            #expect(try unconsented.decoded(CheckReply.self).allowed == true)
            let marketing = try await acme.check("+393331234567", purpose: "marketing", messageType: "session")
                .decoded(CheckReply.self)
            #expect(marketing.allowed == false && marketing.reason == "no_consent" && marketing.predictedError == nil)
            #expect(try marketing.platform.pricingCategory == nil)
            #expect(try marketing.billable == false)

            // An older message delivered late never moves the window back.
            let late = try await interaction(acme, "+393331234567", at: sent.addingTimeInterval(-3 * 86400))
            #expect(try late.decoded(InteractionReply.self).serviceWindow.closesAt == window.closesAt)
        }
    }

    @Test func aMessageOlderThanADayLeavesTheWindowClosed() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let old = Date().addingTimeInterval(-25 * 3600)
            let reply = try await interaction(acme, "+447700900123", at: old, text: "hello")
            let window = try reply.decoded(InteractionReply.self).serviceWindow
            #expect(window.open == false)
            let session = try await acme.check("+447700900123", purpose: "shipping_update", messageType: "session")
                .decoded(CheckReply.self)
            #expect(session.allowed == false && session.reason == "service_window_closed")
        }
    }

    @Test(arguments: ["STOP", "Stop!", "arrêt", "ANNULLA", "baja", "Abmelden", "unsubscribe"])
    func aStopKeywordWithdrawsEverythingOnThatChannel(keyword: String) async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let whatsapp = try await acme.notice(purposes: ["shipping_update", "marketing"])
            let sms = try await acme.notice("sms", purposes: ["shipping_update"])
            _ = try await acme.optIn("+393331234567", purposes: ["shipping_update", "marketing"], noticeId: whatsapp)
            _ = try await acme.optIn("+393331234567", channel: "sms", purposes: ["shipping_update"], noticeId: sms)
            let reply = try await interaction(acme, "+393331234567", at: Date(), text: keyword)
            #expect(try reply.decoded(InteractionReply.self).revoked.count == 2, "\(reply.text)")
            for purpose in ["shipping_update", "marketing"] {
                let check = try await acme.check("+393331234567", purpose: purpose)
                #expect(try check.decoded(CheckReply.self).reason == "consent_withdrawn")
                // Replying STOP opened the window, but a withdrawn purpose gets no free-form messages either.
                let session = try await acme.check("+393331234567", purpose: purpose, messageType: "session")
                #expect(try session.decoded(CheckReply.self).allowed == false)
            }
            let otherChannel = try await acme.check("+393331234567", channel: "sms", purpose: "shipping_update")
            #expect(try otherChannel.decoded(CheckReply.self).allowed == true, "STOP on WhatsApp leaves SMS alone")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM consents WHERE revoke_source = 'stop_keyword'")
                    == 2)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM interactions WHERE kind = 'stop_keyword'") == 1)
        }
    }

    // "please stop sending these" was here until issue 20 made opt-out phrases withdraw marketing
    // (StopsAndObjectionsTests covers it); these are sentences that must not.
    @Test(arguments: [
        "Stop by the shop tomorrow?", "non annullare", "stopper", "the stop button doesn't work",
        "non fermate la consegna",
    ])
    func sentencesContainingAKeywordDoNotWithdraw(text: String) async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            let reply = try await interaction(acme, "+393331234567", at: Date(), text: text)
            #expect(try reply.decoded(InteractionReply.self).revoked.isEmpty)
            #expect(
                try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self).allowed == true)
        }
    }

    @Test func badInteractionsChangeNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let now = RFC3339Text.format(Date())
            let cases: [([String: Any], String)] = [
                (
                    ["subject": "+393331234567", "channel": "whatsapp", "direction": "outbound", "occurredAt": now],
                    "direction"
                ),
                (
                    [
                        "subject": "+393331234567", "channel": "whatsapp", "direction": "inbound",
                        "occurredAt": "2999-01-01T00:00:00Z",
                    ], "occurredAt"
                ),
                (["subject": "+393331234567", "channel": "whatsapp", "direction": "inbound"], "occurredAt"),
                (
                    [
                        "subject": "+393331234567", "channel": "whatsapp", "direction": "inbound", "occurredAt": now,
                        "text": String(repeating: "a", count: 5000),
                    ], "text"
                ),
                (["subject": "anna@", "channel": "email", "direction": "inbound", "occurredAt": now], "subject"),
            ]
            let before = try await database.footprint()
            for (body, field) in cases {
                let reply = try await acme.post("/v1/interactions", as: .consentWrite, body)
                #expect(try reply.status == .unprocessableContent && reply.error.field == field, "\(reply.text)")
            }
            #expect(try await database.footprint() == before)
        }
    }
}

/// The contract's time format, for building request bodies.
enum RFC3339Text {
    static func format(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }
}
