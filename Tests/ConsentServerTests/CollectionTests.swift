import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

extension APIClient {
    /// Opens a consent session for `subject` on a new notice covering `purposes`; returns the token.
    func session(
        _ subject: String, purposes: [String] = ["shipping_update"], pageUrl: String = "https://shop.example/checkout"
    )
        async throws -> String
    {
        let notice = try await notice(purposes: purposes, text: "Updates about my order on WhatsApp, please.")
        let reply = try await post(
            "/v1/consent-sessions", as: .consentWrite,
            ["subject": subject, "channel": "whatsapp", "noticeId": notice, "pageUrl": pageUrl])
        guard reply.status == .created else { throw Unexpected(reply.text) }
        return try reply.decoded(ConsentSessionOpenedReply.self).token
    }

    /// The service's own origin as the router tests address it (`localhost`): where the demo checkout and the
    /// self-service page call from, allowed without a setting.
    static let ownOrigin = "http://localhost"

    func decide(
        _ token: String, _ body: String, origin: String? = APIClient.ownOrigin, userAgent: String = "Mozilla/5.0 Test"
    )
        async throws -> Reply
    {
        var headers: HTTPFields = [.contentType: "application/json", .userAgent: userAgent]
        if let origin { headers[HTTPField.Name("Origin")!] = origin }
        return try await raw(.post, "/v1/consent-sessions/\(token)/decision", headers: headers, body: body)
    }
}

@Suite struct ConsentSessionTests {
    @Test func acceptanceRecordsTheBoundNoticeForTheBoundSubjectOnce() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+39 333 200 0001", purposes: ["shipping_update", "account_update"])
            let described = try await acme.raw(.get, "/v1/consent-sessions/\(token)")
            #expect(described.status == .ok, "\(described.text)")
            let session = try described.decoded(ConsentSessionReply.self)
            let notice = session.notice
            #expect(notice.text == "Updates about my order on WhatsApp, please.")
            #expect(notice.language == "en" && notice.purposes == ["shipping_update", "account_update"])
            #expect(RFC3339.parse(session.expiresAt) != nil, "\(session.expiresAt)")
            #expect(!described.text.contains("393332000001"), "the widget never sees the number")

            // Fields other than the decision are ignored: the page cannot name another person or purpose.
            let accepted = try await acme.decide(
                token, #"{"accepted": true, "subject": "+393339999999", "purposes": ["marketing"]}"#)
            #expect(accepted.status == .created, "\(accepted.text)")
            #expect(
                try accepted.decoded(DecisionReply.self).consents.map(\.purpose) == [
                    "shipping_update", "account_update",
                ])
            #expect(
                try await acme.check("+393332000001", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "consent_granted")
            #expect(
                try await acme.check("+393339999999", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "no_consent")
            #expect(
                try await acme.check("+393332000001", purpose: "marketing").decoded(CheckReply.self).reason
                    == "no_consent")

            // The token is single-use: a second decision, or reading it again, is 410 and changes nothing.
            let before = try await database.footprint()
            let reused = try await acme.decide(token, #"{"accepted": true}"#)
            #expect(try reused.status == .gone && reused.error.code == "consent_session_gone")
            #expect(try await acme.raw(.get, "/v1/consent-sessions/\(token)").status == .gone)
            #expect(try await database.footprint() == before)

            // Provenance: the session's page, the request's user agent; method checkbox; actor the session.
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": "+393332000001", "channel": "whatsapp"])
            let consent = try #require(try export.decoded(ExportReply.self).consents.first)
            let provenance = try #require(consent.provenance)
            #expect(provenance.pageUrl == "https://shop.example/checkout")
            #expect(provenance.userAgent == "Mozilla/5.0 Test")
            #expect(provenance.method == "checkbox")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE actor LIKE 'consent_session:%'")
                    == 2)
        }
    }

    @Test func declineRecordsNothingButUsesTheToken() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393332000002")
            let consentsBefore = try await database.count("SELECT count(*)::int8 FROM consents")
            let declined = try await acme.decide(token, #"{"accepted": false}"#)
            #expect(
                try declined.status == .ok && declined.decoded(DecisionReply.self).accepted == false, "\(declined.text)"
            )
            #expect(try await database.count("SELECT count(*)::int8 FROM consents") == consentsBefore)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 0)
            #expect(
                try await acme.check("+393332000002", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "no_consent")
            #expect(try await acme.decide(token, #"{"accepted": true}"#).status == .gone)
        }
    }

    /// The session's clock is moved back in the database rather than waited out.
    @Test func anExpiredTokenIs410() async throws {
        let lifetime = Int(CollectionPolicy.default.consentSessionLifetime)
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393332000003")
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM consent_sessions WHERE expires_at - created_at = make_interval(secs => \(lifetime))"
                ) == 1)
            #expect(
                try await acme.raw(.get, "/v1/consent-sessions/\(token)").status == .ok,
                "live before its lifetime has passed")
            #expect(
                try await database.count(
                    """
                    WITH s AS (UPDATE consent_sessions SET created_at = created_at - make_interval(secs => \(lifetime + 1)),
                        expires_at = expires_at - make_interval(secs => \(lifetime + 1)) RETURNING 1)
                    SELECT count(*)::int8 FROM s
                    """) == 1)
            #expect(try await acme.raw(.get, "/v1/consent-sessions/\(token)").status == .gone)
            #expect(try await acme.decide(token, #"{"accepted": true}"#).status == .gone)
            #expect(
                try await acme.check("+393332000003", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "no_consent")
        }
    }

    @Test func tokensAreBoundToTheirTenantAndUnknownOnesAre404() async throws {
        try await withTenants(["acme", "globex"]) { tenants, _ in
            let acme = tenants[0]
            let token = try await acme.session("+393332000004")
            // A token that names another tenant (its first 16 bytes) with the same secret finds nothing.
            var bytes = try #require(Base64URL.decode(token))
            bytes.replaceSubrange(0..<16, with: tenants[1].tenant.tenant.id.bytes)
            let moved = Base64URL.encode(bytes)
            #expect(try await acme.raw(.get, "/v1/consent-sessions/\(moved)").status == .notFound)
            #expect(try await acme.raw(.get, "/v1/consent-sessions/not-a-token").status == .notFound)
            #expect(try await acme.decide("AAAA", #"{"accepted": true}"#).status == .notFound)
        }
    }

    @Test func openingRefusesBadInputAndChangesNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let smsNotice = try await acme.notice("sms", purposes: ["shipping_update"])
            let before = try await database.footprint()
            let cases: [([String: Any], String)] = [
                (
                    ["subject": "12", "channel": "whatsapp", "noticeId": notice, "pageUrl": "https://shop.example"],
                    "subject"
                ),
                (
                    [
                        "subject": "+393332000005", "channel": "whatsapp", "noticeId": notice,
                        "pageUrl": "javascript:alert(1)",
                    ], "pageUrl"
                ),
                (
                    [
                        "subject": "+393332000005", "channel": "whatsapp", "noticeId": smsNotice,
                        "pageUrl": "https://shop.example",
                    ], "channel"
                ),
                (
                    [
                        "subject": "+393332000005", "channel": "whatsapp", "noticeId": UUID().uuidString,
                        "pageUrl": "https://shop.example",
                    ], "noticeId"
                ),
            ]
            for (body, field) in cases {
                let reply = try await acme.post("/v1/consent-sessions", as: .consentWrite, body)
                #expect(try reply.status == .unprocessableContent && reply.error.field == field, "\(reply.text)")
            }
            let wrongScope = try await acme.post(
                "/v1/consent-sessions", as: .consentCheck,
                [
                    "subject": "+393332000005", "channel": "whatsapp", "noticeId": notice,
                    "pageUrl": "https://shop.example",
                ])
            #expect(wrongScope.status == .forbidden)
            #expect(try await database.footprint() == before)
        }
    }

    @Test func crossOriginCallsNeedTheTenantsPermission() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let token = try await acme.session("+393332000006")
            let origin = "https://shop.example"
            let preflightHeaders: HTTPFields = [
                HTTPField.Name("Origin")!: origin, HTTPField.Name("Access-Control-Request-Method")!: "POST",
            ]
            let refusedPreflight = try await acme.raw(
                .options, "/v1/consent-sessions/\(token)/decision", headers: preflightHeaders)
            #expect(refusedPreflight.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
            let before = try await database.footprint()
            let refused = try await acme.decide(token, #"{"accepted": true}"#, origin: origin)
            #expect(try refused.status == .forbidden && refused.error.code == "origin_not_allowed")
            #expect(
                try await database.footprint() == before, "a refused origin changes nothing and leaves the token usable"
            )

            let set = try await acme.post(
                "/v1/settings/origins", as: .admin, ["origins": ["HTTPS://Shop.Example:443", "http://localhost:3000"]],
                method: .put)
            #expect(
                try set.status == .ok
                    && set.decoded(OriginsReply.self).origins == ["http://localhost:3000", "https://shop.example"],
                "\(set.text)")
            let preflight = try await acme.raw(
                .options, "/v1/consent-sessions/\(token)/decision", headers: preflightHeaders)
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == origin)
            #expect(preflight.headers[HTTPField.Name("Access-Control-Allow-Methods")!] == "GET, POST")
            // Issue 21, finding 8: a decision with no `Origin` at all came from no allowed page, and is refused too.
            let settled = try await database.footprint()
            let noOrigin = try await acme.decide(token, #"{"accepted": true}"#, origin: nil)
            #expect(try noOrigin.status == .forbidden && noOrigin.error.code == "origin_not_allowed")
            #expect(try await database.footprint() == settled)
            let allowed = try await acme.decide(token, #"{"accepted": true}"#, origin: origin)
            #expect(
                allowed.status == .created && allowed.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == origin)
            // The page's origin is kept with the evidence.
            let export = try await acme.post(
                "/v1/subjects/export", as: .dpo, ["subject": "+393332000006", "channel": "whatsapp"])
            #expect(export.text.contains(#""origin":"https://shop.example""#), "\(export.text)")
            #expect(
                try await acme.raw(.get, "/v1/settings/origins", headers: acme.tenant.bearer(.admin)).decoded(
                    OriginsReply.self
                ).origins == ["http://localhost:3000", "https://shop.example"])
        }
    }

    @Test func originSettingsRefuseWhatIsNotAnOrigin() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let before = try await database.footprint()
            for (origins, field) in [
                (["https://shop.example/checkout"], "origins[0]"),
                (["https://ok.example", "ftp://files.example"], "origins[1]"),
                (["*"], "origins[0]"), (["https://user@shop.example"], "origins[0]"),
            ] {
                let reply = try await acme.post("/v1/settings/origins", as: .admin, ["origins": origins], method: .put)
                #expect(try reply.status == .unprocessableContent && reply.error.field == field, "\(reply.text)")
            }
            let tooMany = (0...50).map { "https://s\($0).example" }
            #expect(
                try await acme.post("/v1/settings/origins", as: .admin, ["origins": tooMany], method: .put).status
                    == .unprocessableContent)
            #expect(
                try await acme.post("/v1/settings/origins", as: .consentWrite, ["origins": []], method: .put).status
                    == .forbidden)
            #expect(
                try await acme.post(
                    "/v1/settings/whatsapp", as: .admin, ["appSecret": "short", "verifyToken": "t"], method: .put
                ).error.field == "appSecret")
            #expect(try await database.footprint() == before)
        }
    }

    @Test func theWidgetIsSmallSelfContainedAndCSPFriendly() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let reply = try await tenants[0].raw(.get, "/widget.js")
            #expect(reply.status == .ok && reply.headers[.contentType]?.hasPrefix("text/javascript") == true)
            #expect(reply.body.count < 10 * 1024, "\(reply.body.count) bytes")
            for forbidden in [
                "eval(", "new Function", "innerHTML", "document.write", "setAttribute(\"style\"", "import ",
            ] {
                #expect(!reply.text.contains(forbidden), "\(forbidden)")
            }
            #expect(reply.text.contains("box.checked = false"), "the box starts unticked")
            #expect(reply.text.contains("textContent"), "the notice is written as text, exactly as stored")
        }
    }
}

@Suite struct DoubleOptInTests {
    static var doubleOptIn: [String: Any] {
        var provenance = APIClient.provenance
        provenance["method"] = "double_opt_in"
        return provenance
    }

    @Test func aConfirmationReplyInAnyLanguageGrantsWhatWasPending() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            for (index, reply) in ["YES", "Sì", "ja!", "Oui.", "sim", "SI"].enumerated() {
                let subject = "+39333300000\(index)"
                let pending = try await acme.optIn(
                    subject, purposes: ["shipping_update", "marketing"], noticeId: notice, provenance: Self.doubleOptIn)
                let pendingConsents = try pending.decoded(OptInReply.self).consents
                #expect(pendingConsents.count == 2 && pendingConsents.allSatisfy { $0.status == "pending" })
                #expect(
                    try await acme.check(subject, purpose: "marketing").decoded(CheckReply.self).reason
                        == "pending_confirmation")
                let answer = try await acme.post(
                    "/v1/interactions", as: .consentWrite,
                    [
                        "subject": subject, "channel": "whatsapp", "direction": "inbound",
                        "occurredAt": RFC3339.format(Date()), "text": reply,
                    ])
                #expect(try answer.decoded(InteractionReply.self).confirmed.count == 2, "\(reply): \(answer.text)")
                #expect(
                    try await acme.check(subject, purpose: "marketing").decoded(CheckReply.self).reason
                        == "consent_granted")
            }
            // A longer message that merely contains "yes" confirms nothing.
            _ = try await acme.optIn(
                "+393333000099", purposes: ["marketing"], noticeId: notice, provenance: Self.doubleOptIn)
            let chatter = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": "+393333000099", "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339.format(Date()), "text": "yes but later",
                ])
            #expect(try chatter.decoded(InteractionReply.self).confirmed.isEmpty)
            #expect(
                try await acme.check("+393333000099", purpose: "marketing").decoded(CheckReply.self).reason
                    == "pending_confirmation")
        }
    }

    @Test func confirmationByAPI() async throws {
        try await withTenants(["acme", "globex"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let pending = try await acme.optIn(
                "+393333000100", purposes: ["marketing"], noticeId: notice, provenance: Self.doubleOptIn)
            let id = try #require(try pending.decoded(OptInReply.self).consents.first?.id)
            #expect(
                try await tenants[1].post("/v1/consents/\(id)/confirm", as: .consentWrite, [:]).status == .notFound,
                "another tenant's consent is unknown")
            #expect(try await acme.post("/v1/consents/\(id)/confirm", as: .consentCheck, [:]).status == .forbidden)
            let confirmed = try await acme.post("/v1/consents/\(id)/confirm", as: .consentWrite, [:])
            #expect(confirmed.status == .ok, "\(confirmed.text)")
            let confirmation = try confirmed.decoded(ConfirmationReply.self)
            #expect(confirmation.status == "granted" && confirmation.id == id)
            #expect(confirmation.consistencyToken != nil)
            #expect(
                try await acme.check("+393333000100", purpose: "marketing").decoded(CheckReply.self).reason
                    == "consent_granted")
            let again = try await acme.post("/v1/consents/\(id)/confirm", as: .consentWrite, [:])
            #expect(
                try again.status == .ok && confirmation.grantedAt != nil
                    && again.decoded(ConfirmationReply.self).grantedAt == confirmation.grantedAt)
            _ = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393333000100", "channel": "whatsapp"])
            #expect(
                try await acme.post("/v1/consents/\(id)/confirm", as: .consentWrite, [:]).error.code
                    == "consent_withdrawn")
            #expect(
                try await acme.post("/v1/consents/\(UUID().uuidString)/confirm", as: .consentWrite, [:]).status
                    == .notFound)
        }
    }

    /// The consent's age is moved back in the database rather than waited out.
    static func age(_ consentId: String, pastTheLifetimeIn database: TestDatabase) async throws {
        let lifetime = Int(CollectionPolicy.default.pendingConsentLifetime)
        #expect(
            try await database.count(
                """
                WITH c AS (UPDATE consents SET created_at = created_at - make_interval(secs => \(lifetime + 1))
                    WHERE id = '\(consentId)' AND status = 'pending' RETURNING 1)
                SELECT count(*)::int8 FROM c
                """) == 1)
    }

    @Test func anUnconfirmedOptInExpiresAndALateYesConfirmsNothing() async throws {
        let lifetime = CollectionPolicy.default.pendingConsentLifetime
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let pending = try await acme.optIn(
                "+393333000200", purposes: ["marketing"], noticeId: notice, provenance: Self.doubleOptIn)
            let id = try #require(try pending.decoded(OptInReply.self).consents.first?.id)
            let early = try await database.withClient { client in
                try await PendingConsentExpiry(client: client, lifetime: lifetime).expireAll(logger: database.logger)
            }
            #expect(early == 0, "nothing expires within the lifetime")
            try await Self.age(id, pastTheLifetimeIn: database)
            // Before the expiry job runs, the age alone refuses the confirmation.
            let late = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": "+393333000200", "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339.format(Date()), "text": "YES",
                ])
            #expect(try late.decoded(InteractionReply.self).confirmed.isEmpty)
            #expect(
                try await acme.post("/v1/consents/\(id)/confirm", as: .consentWrite, [:]).error.code
                    == "confirmation_expired")

            let expired = try await database.withClient { client in
                try await PendingConsentExpiry(client: client, lifetime: lifetime).expireAll(logger: database.logger)
            }
            #expect(expired == 1)
            #expect(
                try await acme.check("+393333000200", purpose: "marketing").decoded(CheckReply.self).reason
                    == "no_consent")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.expired'")
                    == 1)

            // Asking again starts a new consent.
            let fresh = try await acme.optIn(
                "+393333000200", purposes: ["marketing"], noticeId: notice, provenance: Self.doubleOptIn)
            let freshId = try #require(try fresh.decoded(OptInReply.self).consents.first?.id)
            #expect(freshId != id)
            #expect(
                try await acme.check("+393333000200", purpose: "marketing").decoded(CheckReply.self).reason
                    == "pending_confirmation")
        }
    }

    @Test func aStalePendingOptInMetByANewOptInExpiresThere() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let first = try await acme.optIn(
                "+393333000300", purposes: ["marketing"], noticeId: notice, provenance: Self.doubleOptIn)
            let firstId = try #require(try first.decoded(OptInReply.self).consents.first?.id)
            try await Self.age(firstId, pastTheLifetimeIn: database)
            let direct = try await acme.optIn("+393333000300", purposes: ["marketing"], noticeId: notice)
            let consent = try #require(try direct.decoded(OptInReply.self).consents.first)
            #expect(consent.id != firstId && consent.status == "granted", "\(direct.text)")
            #expect(try await database.count("SELECT count(*)::int8 FROM consents WHERE status = 'expired'") == 1)
        }
    }
}

@Suite struct SelfServiceTests {
    @Test func theLinkListsConsentsAndWithdrawsOneOrAll() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            _ = try await acme.optIn("+393334000001", purposes: ["shipping_update", "marketing"], noticeId: notice)
            let link = try await acme.post(
                "/v1/subjects/links", as: .consentWrite, ["subject": "+39 333 400 0001", "channel": "whatsapp"])
            #expect(link.status == .created, "\(link.text)")
            let url = try link.decoded(SelfServiceLinkReply.self).url
            #expect(!url.contains("3334000001"))
            let path = try #require(URLComponents(string: url)?.path)
            #expect(
                try await acme.post(
                    "/v1/subjects/links", as: .dpo, ["subject": "+393334000001", "channel": "whatsapp"]
                ).status == .created)
            #expect(
                try await acme.post(
                    "/v1/subjects/links", as: .consentCheck, ["subject": "+393334000001", "channel": "whatsapp"]
                ).status == .forbidden)
            #expect(
                try await acme.post(
                    "/v1/subjects/links", as: .dpo, ["subject": "+393334000999", "channel": "whatsapp"]
                ).status == .notFound)

            let page = try await acme.raw(.get, path)
            #expect(
                page.status == .ok && page.text.contains("data-purpose=\"marketing\"")
                    && page.text.contains("data-purpose=\"shipping_update\""))
            #expect(page.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            #expect(
                page.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true)
            #expect(!page.text.contains("3334000001"), "the page shows no number")

            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let one = try await acme.raw(.post, path + "/withdraw", headers: form, body: "purpose=marketing")
            #expect(one.status == .seeOther && one.headers[.location] == path + "?withdrawn=1")
            #expect(
                try await acme.check("+393334000001", purpose: "marketing").decoded(CheckReply.self).reason
                    == "consent_withdrawn")
            #expect(
                try await acme.check("+393334000001", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "consent_granted")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM consents WHERE revoke_source = 'self_service'")
                    == 1)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.withdrawn' AND actor = 'self_service'"
                ) == 1)

            // A form with a malformed field withdraws nothing, even beside a well-formed one; so is a mangled page URL refused.
            #expect(
                try await acme.raw(.post, path + "/withdraw", headers: form, body: "all=yes&purpose=shipping_update")
                    .status == .badRequest)
            #expect(
                try await acme.raw(.post, path + "/withdraw", headers: form, body: "all=1&purpose=").status
                    == .badRequest)
            #expect(
                try await acme.raw(.post, path + "/withdraw", headers: form, body: "all=1&purpose=%C2%94").status
                    == .badRequest)
            #expect(try await acme.raw(.get, path + "?withdrawn=-1").status == .badRequest)
            #expect(try await acme.raw(.get, path + "?withdrawn=true").status == .badRequest)
            #expect(try await acme.raw(.get, path + "?withdrawn=3000000000").status == .badRequest)
            #expect(
                try await acme.check("+393334000001", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "consent_granted")
            let all = try await acme.raw(.post, path + "/withdraw", headers: form, body: "all=1")
            #expect(all.status == .seeOther)
            #expect(
                try await acme.check("+393334000001", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "consent_withdrawn")
            #expect(try await acme.raw(.get, path).text.contains("id=\"no-consents\""))
        }
    }

    @Test func thePageSpeaksTheNoticesLanguage() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let reply = try await acme.post(
                "/v1/notices", as: .admin,
                [
                    "channel": "whatsapp", "language": "it-IT", "text": "Aggiornamenti sull'ordine su WhatsApp.",
                    "purposes": ["shipping_update"],
                ])
            let notice = try reply.decoded(NoticeReply.self).id
            _ = try await acme.optIn("+393334000002", purposes: ["shipping_update"], noticeId: notice)
            let link = try await acme.post(
                "/v1/subjects/links", as: .consentWrite, ["subject": "+393334000002", "channel": "whatsapp"])
            let url = try link.decoded(SelfServiceLinkReply.self).url
            let path = try #require(URLComponents(string: url)?.path)
            let page = try await acme.raw(.get, path)
            #expect(page.text.contains("<html lang=\"it\">") && page.text.contains("Revoca"), "\(page.text)")
        }
    }

    @Test func aTamperedExpiredOrErasedLinkWithdrawsNothing() async throws {
        var policy = CollectionPolicy.default
        policy.selfServiceLinkLifetime = 1
        try await withTenants(["acme"], collection: policy) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393334000003", purposes: ["marketing"], noticeId: notice)
            let link = try await acme.post(
                "/v1/subjects/links", as: .consentWrite, ["subject": "+393334000003", "channel": "whatsapp"])
            let url = try link.decoded(SelfServiceLinkReply.self).url
            let path = try #require(URLComponents(string: url)?.path)
            let token = String(path.dropFirst("/self-service/".count))
            var bytes = try #require(Base64URL.decode(token))
            bytes[bytes.count - 1] ^= 1
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let before = try await database.footprint()
            #expect(
                try await acme.raw(
                    .post, "/self-service/\(Base64URL.encode(bytes))/withdraw", headers: form, body: "all=1"
                ).status == .notFound)
            #expect(try await acme.raw(.get, "/self-service/garbage").status == .notFound)
            // Issue 21, finding 4: a well-formed link naming a tenant that does not exist was a 500 (the open route
            // tried to create that tenant's link key); it is a 404 and writes nothing.
            var foreign = bytes
            let unknownTenant = UUID().bytes
            for (offset, byte) in unknownTenant.enumerated() { foreign[1 + offset] = byte }
            #expect(try await acme.raw(.get, "/self-service/\(Base64URL.encode(foreign))").status == .notFound)
            #expect(
                try await acme.raw(
                    .post, "/self-service/\(Base64URL.encode(foreign))/withdraw", headers: form, body: "all=1"
                ).status == .notFound)
            // Waited out, not moved back: the link's expiry is signed into the link itself and checked against the
            // server's clock, so there is no stored time to move.
            try await Task.sleep(for: .milliseconds(1_300))
            #expect(try await acme.raw(.post, path + "/withdraw", headers: form, body: "all=1").status == .gone)
            #expect(try await database.footprint() == before)
            #expect(
                try await acme.check("+393334000003", purpose: "marketing").decoded(CheckReply.self).reason
                    == "consent_granted")
        }
    }
}

@Suite struct CollectionRetentionTests {
    @Test func unusedSessionsAndOldMessageIdsArePurgedAcceptedSessionsStay() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let accepted = try await acme.session("+393335000001")
            _ = try await acme.session("+393335000002")
            let declined = try await acme.session("+393335000003")
            #expect(try await acme.decide(accepted, #"{"accepted": true}"#).status == .created)
            #expect(try await acme.decide(declined, #"{"accepted": false}"#).status == .ok)
            try await WhatsAppWebhookTests.configure(acme)
            _ = try await WhatsAppWebhookTests.deliver(try WhatsAppWebhookTests.fixture("text-message"), to: acme)

            let soon = try await database.withClient { client in
                try await RetentionPurger(client: client, policy: .default).purgeAll(
                    now: Date().addingTimeInterval(86_400), logger: database.logger)
            }
            #expect(soon.sessionsAndMessageIds == 0, "nothing is purged within the retry period")
            let later = try await database.withClient { client in
                try await RetentionPurger(client: client, policy: .default).purgeAll(
                    now: Date().addingTimeInterval(8 * 86_400), logger: database.logger)
            }
            #expect(later.sessionsAndMessageIds == 3, "the unused and the declined session, and the message id")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM consent_sessions WHERE decision = 'accepted'") == 1
            )
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_sessions") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM whatsapp_messages_seen") == 0)
        }
    }
}

@Suite struct ClientAddressTests {
    /// The address in a widget consent's provenance: `X-Forwarded-For` counts only when the operator says a proxy
    /// writes it; otherwise anyone could put any address into the evidence.
    @Test func forwardedForIsTrustedOnlyWhenConfigured() async throws {
        for trust in [false, true] {
            var policy = CollectionPolicy.default
            policy.trustForwardedFor = trust
            try await withTenants(["acme"], collection: policy) { tenants, _ in
                let acme = tenants[0]
                let token = try await acme.session("+393336000001")
                let reply = try await acme.raw(
                    .post, "/v1/consent-sessions/\(token)/decision",
                    headers: [
                        .contentType: "application/json", HTTPField.Name("Origin")!: APIClient.ownOrigin,
                        HTTPField.Name("X-Forwarded-For")!: "203.0.113.9, 198.51.100.7",
                    ],
                    body: #"{"accepted": true}"#)
                #expect(reply.status == .created)
                let export = try await acme.post(
                    "/v1/subjects/export", as: .dpo, ["subject": "+393336000001", "channel": "whatsapp"])
                let provenance = try #require(try export.decoded(ExportReply.self).consents.first?.provenance)
                #expect((provenance.ipAddress == "198.51.100.7") == trust, "trust=\(trust): \(export.text)")
            }
        }
    }
}
