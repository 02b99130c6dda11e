import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

/// Issue 20: once a person says stop, nothing older (an old list, a replayed message) brings a message back.
@Suite struct StopsAndObjectionsTests {
    static let person = "+393331234567"

    static func provenance(_ method: String, collectedAt: Date) -> [String: Any] {
        ["pageUrl": "https://shop.example/list-2025", "collectedAt": RFC3339.format(collectedAt), "method": method]
    }

    static func ago(_ seconds: TimeInterval) -> Date {
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - seconds).rounded(.down))
    }

    func objection(_ api: APIClient, scope: String, subject: String = person, channel: String = "whatsapp")
        async throws -> APIClient.Reply
    {
        try await api.post(
            "/v1/objections", as: .consentWrite,
            ["subjects": [["subject": subject, "channel": channel]], "scope": scope])
    }

    func reply(_ api: APIClient, _ text: String, at: Date = Date()) async throws -> APIClient.Reply {
        try await api.post(
            "/v1/interactions", as: .consentWrite,
            [
                "subject": Self.person, "channel": "whatsapp", "direction": "inbound",
                "occurredAt": RFC3339.format(at), "text": text,
            ])
    }

    @Test func stopThenAnOlderImportIsSupersededAndANewerOptInGrants() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            _ = try await acme.optIn(Self.person, purposes: ["marketing"], noticeId: notice)
            #expect(try await reply(acme, "STOP").status == .created)

            // The shop re-imports a list made months before the STOP.
            let imported = try await acme.optIn(
                Self.person, purposes: ["marketing", "shipping_update"], noticeId: notice,
                provenance: Self.provenance("import", collectedAt: Self.ago(90 * 86_400)))
            #expect(imported.status == .created, "\(imported.text)")
            let statuses = try imported.decoded(OptInReply.self).consents.map { [$0.purpose, $0.status] }
            #expect(statuses == [["marketing", "superseded"], ["shipping_update", "superseded"]])
            let check = try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self)
            #expect(check.allowed == false && check.reason == "consent_withdrawn")
            #expect(
                try await acme.check(Self.person, purpose: "shipping_update").decoded(CheckReply.self).allowed == false)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.superseded'") == 2)
            // Kept as evidence: the rows and their collection are there.
            #expect(
                try await database.count(
                    """
                    SELECT count(*)::int8 FROM consents c JOIN consent_evidence e ON e.consent_id = c.id
                    WHERE c.status = 'superseded'
                    """) == 2)

            // The same old date by any other method is no different: the evidence is older than the stop.
            let oldCheckbox = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("checkbox", collectedAt: Self.ago(3600)))
            #expect(try oldCheckbox.decoded(OptInReply.self).consents.map(\.status) == ["superseded"])

            // The person ticks the box again after the STOP: that grants.
            let fresh = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("checkbox", collectedAt: Date().addingTimeInterval(1)))
            #expect(try fresh.decoded(OptInReply.self).consents.map(\.status) == ["granted"], "\(fresh.text)")
            #expect(try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self).allowed == true)
        }
    }

    @Test func aStopDeliveredLateDoesNotWithdrawAnOptInGivenAfterIt() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("checkbox", collectedAt: Self.ago(60)))
            // The STOP was written two minutes ago and reaches us only now: the opt-in a minute ago is newer.
            let late = try await reply(acme, "stop", at: Self.ago(120))
            #expect(try late.decoded(InteractionReply.self).revoked.isEmpty, "\(late.text)")
            #expect(try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self).allowed == true)
            // Yet an import dated before that STOP cannot add a purpose back.
            let older = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("import", collectedAt: Self.ago(86_400)))
            #expect(try older.decoded(OptInReply.self).consents.map(\.status) == ["superseded"])
        }
    }

    @Test func aStopDatedAheadOfOurClockIsDatedWhenItArrived() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn(Self.person, purposes: ["marketing"], noticeId: notice)
            // The sender's clock runs four minutes fast (the API allows five): the STOP is still dated now, so the
            // person's new tick a moment later grants.
            #expect(try await reply(acme, "STOP", at: Date().addingTimeInterval(240)).status == .created)
            let again = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice, provenance: APIClient.freshProvenance)
            #expect(try again.decoded(OptInReply.self).consents.map(\.status) == ["granted"], "\(again.text)")
        }
    }

    @Test func objectionThenImportIsSuppressedAndAFreshOptInGrants() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            _ = try await acme.optIn(Self.person, purposes: ["marketing", "shipping_update"], noticeId: notice)

            let objected = try await objection(acme, scope: "marketing")
            #expect(objected.status == .ok, "\(objected.text)")
            let body = try objected.decoded(ObjectionReply.self)
            #expect(body.revoked.map(\.purpose) == ["marketing"] && body.revoked.map(\.channel) == ["whatsapp"])
            let token = body.consistencyToken
            let afterObjection = try await acme.post(
                "/v1/checks", as: .consentCheck,
                [
                    "subject": Self.person, "channel": "whatsapp", "purpose": "marketing", "consistencyToken": token,
                ]
            ).decoded(CheckReply.self)
            #expect(afterObjection.allowed == false)
            #expect(
                try await acme.check(Self.person, purpose: "shipping_update").decoded(CheckReply.self).allowed == true,
                "an objection to marketing leaves order updates alone")

            // An import, however recent its date, cannot bring marketing back; order updates it may record.
            let imported = try await acme.optIn(
                Self.person, purposes: ["marketing", "shipping_update"], noticeId: notice,
                provenance: Self.provenance("import", collectedAt: Date().addingTimeInterval(1)))
            #expect(imported.status == .created, "\(imported.text)")
            let outcome = try imported.decoded(OptInReply.self).consents
            #expect(
                outcome.map { [$0.purpose, $0.status] } == [
                    ["marketing", "suppressed"], ["shipping_update", "granted"],
                ])
            #expect(outcome.first?.id == nil)
            #expect(try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self).allowed == false)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.suppressed'")
                    == 1)

            // A box ticked before the objection is older evidence; one ticked after it is the person's new choice.
            let before = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("checkbox", collectedAt: Self.ago(3600)))
            #expect(try before.decoded(OptInReply.self).consents.map(\.status) == ["superseded"])
            let after = try await acme.optIn(
                Self.person, purposes: ["marketing"], noticeId: notice,
                provenance: Self.provenance("checkbox", collectedAt: Date().addingTimeInterval(1)))
            #expect(try after.decoded(OptInReply.self).consents.map(\.status) == ["granted"], "\(after.text)")
            #expect(try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self).allowed == true)
        }
    }

    @Test func anObjectionCoversTheTenantsOwnMarketingPurposesAndSurvivesErasure() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let defined = try await acme.call(
                .put, "/v1/purposes/loyalty_offers", as: .admin,
                json: #"{"name": "Loyalty offers", "category": "marketing"}"#)
            #expect(defined.status == .created, "\(defined.text)")
            let notice = try await acme.notice(purposes: ["loyalty_offers", "marketing", "account_update"])
            _ = try await acme.optIn(
                Self.person, purposes: ["loyalty_offers", "marketing", "account_update"], noticeId: notice)
            let objected = try await objection(acme, scope: "marketing").decoded(ObjectionReply.self)
            #expect(objected.revoked.map(\.purpose).sorted() == ["loyalty_offers", "marketing"])

            // Erased afterwards: the suppression entry stays and now covers every purpose.
            let erased = try await acme.post(
                "/v1/subjects/erase", as: .dpo, ["subject": Self.person, "channel": "whatsapp"])
            #expect(erased.status == .ok, "\(erased.text)")
            let imported = try await acme.optIn(
                Self.person, purposes: ["account_update"], noticeId: notice,
                provenance: Self.provenance("import", collectedAt: Date().addingTimeInterval(1)))
            #expect(try imported.status == .unprocessableContent && imported.error.code == "suppressed")
            #expect(try await database.count("SELECT count(*)::int8 FROM suppressions WHERE scope = 'all'") == 1)
        }
    }

    @Test func anObjectionAboutSomeoneUnknownStillSuppressesTheirImport() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice("sms", purposes: ["marketing", "shipping_update"])
            let objected = try await objection(acme, scope: "all", subject: "+15550001234", channel: "sms")
            #expect(try objected.decoded(ObjectionReply.self).revoked.isEmpty, "\(objected.text)")
            let imported = try await acme.optIn(
                "+15550001234", channel: "sms", purposes: ["marketing", "shipping_update"], noticeId: notice,
                provenance: Self.provenance("import", collectedAt: Date().addingTimeInterval(1)))
            #expect(try imported.status == .unprocessableContent && imported.error.code == "suppressed")
            #expect(try await database.count("SELECT count(*)::int8 FROM subjects") == 0, "nobody was made")
        }
    }

    @Test func badObjectionsAreRefusedAndChangeNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let bodies: [[String: Any]] = [
                ["subjects": [], "scope": "marketing"],
                ["subjects": [["subject": Self.person, "channel": "whatsapp"]], "scope": "newsletters"],
                ["subjects": [["subject": "not a number", "channel": "whatsapp"]], "scope": "all"],
                ["subjects": [["subject": Self.person, "channel": "fax"]], "scope": "all"],
                ["subjects": [["subject": Self.person, "channel": "whatsapp"]], "scope": "all", "source": "pigeon"],
                [
                    "subjects": [["subject": Self.person, "channel": "whatsapp"]], "scope": "all",
                    "occurredAt": "2999-01-01T00:00:00Z",
                ],
                [
                    "subjects": Array(repeating: ["subject": Self.person, "channel": "whatsapp"], count: 11),
                    "scope": "all",
                ],
            ]
            for body in bodies {
                let reply = try await acme.post("/v1/objections", as: .consentWrite, body)
                #expect(reply.status == .unprocessableContent, "\(body): \(reply.text)")
                #expect(try reply.error.code.isEmpty == false)
            }
            #expect(
                try await acme.post(
                    "/v1/objections", as: .consentCheck,
                    ["subjects": [["subject": Self.person, "channel": "whatsapp"]], "scope": "all"]
                ).status == .forbidden)
            #expect(try await database.count("SELECT count(*)::int8 FROM suppressions") == 0)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'objection.recorded'")
                    == 0)
        }
    }

    @Test func anObjectionRequestIsDueInAMonthAndCompletedByApplyingIt() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            _ = try await acme.optIn(Self.person, purposes: ["marketing", "shipping_update"], noticeId: notice)
            let opened = try await acme.post(
                "/v1/requests", as: .dpo, ["type": "objection", "subject": Self.person, "channel": "whatsapp"])
            #expect(opened.status == .created, "\(opened.text)")
            let request = try opened.decoded(SubjectRequestReply.self)
            #expect(request.type == "objection" && request.status == "pending")
            let completed = try await acme.call(.post, "/v1/requests/\(request.id)/complete", as: .dpo)
            #expect(completed.status == .ok, "\(completed.text)")
            #expect(completed.text.contains(#""outcome":"objected""#))
            #expect(try await acme.check(Self.person, purpose: "marketing").decoded(CheckReply.self).allowed == false)
            #expect(
                try await acme.check(Self.person, purpose: "shipping_update").decoded(CheckReply.self).allowed == true)
        }
    }

    @Test func aPurposeCategoryCannotChangeOnceUsedAndExportsKeepTheOneAgreedTo() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let define = { (category: String) in
                try await acme.call(
                    .put, "/v1/purposes/club_news", as: .admin,
                    json: #"{"name": "Club news", "category": "\#(category)"}"#)
            }
            #expect(try await define("utility").status == .created)
            #expect(try await define("marketing").status == .ok, "unused: it may still be re-filed")
            let notice = try await acme.notice(purposes: ["club_news"])
            let refused = try await define("utility")
            #expect(try refused.status == .unprocessableContent && refused.error.code == "purpose_in_use")
            #expect(try await define("marketing").status == .ok, "a rename keeping the category is fine")
            _ = try await acme.optIn(Self.person, purposes: ["club_news"], noticeId: notice)
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": Self.person, "channel": "whatsapp"])
            #expect(export.text.contains(#""category":"marketing""#), "\(export.text)")
        }
    }
}

struct ObjectionReply: Decodable {
    struct Revoked: Decodable {
        let channel: String
        let purpose: String
        let id: String
        let revokedAt: String
    }
    let id: String
    let revoked: [Revoked]
    let consistencyToken: String
}
