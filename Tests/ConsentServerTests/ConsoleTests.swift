import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ConsentServer

/// A signed-in console session as a browser holds it: the cookie and the CSRF token of its pages.
struct ConsoleBrowser {
    let api: APIClient
    let cookie: String
    let csrf: String

    static func signIn(_ api: APIClient, scope: Scope = .dpo) async throws -> (APIClient.Reply, ConsoleBrowser?) {
        let key = api.tenant.keys[scope]!.token.value
        let reply = try await api.raw(
            .post, "/console/sign-in", headers: [.contentType: "application/x-www-form-urlencoded"],
            body: "key=\(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)")
        guard let setCookie = reply.headers[.setCookie],
            let value = setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last
        else { return (reply, nil) }
        let cookie = String(value)
        let page = try await api.raw(.get, "/console", headers: [.cookie: "consentd_console=\(cookie)"])
        guard let range = page.text.range(of: #"name="csrf" value="([^"]+)""#, options: .regularExpression) else {
            return (reply, nil)
        }
        let csrf = page.text[range].split(separator: "\"")[3]
        return (reply, ConsoleBrowser(api: api, cookie: cookie, csrf: String(csrf)))
    }

    /// The erasure form's code and seal, as the subject page shows them for `subject`.
    func erasureCode(_ subject: String, channel: String = "whatsapp") async throws -> (code: String, seal: String) {
        let page = try await post("/console/subject", ["subject": subject, "channel": channel])
        guard let code = page.text.firstMatch(#"id="erase-code" class="code">([A-Z0-9]+)<"#),
            let seal = page.text.firstMatch(#"name="seal" value="([0-9a-f]+)""#)
        else { throw APIClient.Unexpected(page.text) }
        return (code, seal)
    }

    func get(_ path: String) async throws -> APIClient.Reply {
        try await api.raw(.get, path, headers: [.cookie: "consentd_console=\(cookie)"])
    }

    func post(_ path: String, _ fields: [String: String], csrf: String? = nil, origin: String? = nil) async throws
        -> APIClient.Reply
    {
        var all = fields
        all["csrf"] = csrf ?? self.csrf
        let body = all.map {
            "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
        }.joined(separator: "&")
        var headers: HTTPFields = [
            .cookie: "consentd_console=\(cookie)", .contentType: "application/x-www-form-urlencoded",
        ]
        if let origin { headers[HTTPField.Name("Origin")!] = origin }
        return try await api.raw(.post, path, headers: headers, body: body)
    }
}

@Suite struct ConsoleTests {
    @Test func pagesNeedASignedInDPO() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            for path in [
                "/console", "/console/subject", "/console/requests", "/console/audit", "/console/templates",
                "/console/audit/report?format=csv&from=2026-01-01&to=2026-01-02", "/console/imports",
                "/console/imports/\(UUID().uuidString)/rejected", "/console/webhooks",
            ] {
                let reply = try await acme.raw(.get, path)
                #expect(reply.status == .seeOther && reply.headers[.location] == "/console/sign-in", "\(path)")
            }
            for scope in [Scope.admin, .consentWrite, .consentCheck] {
                let (refused, browser) = try await ConsoleBrowser.signIn(acme, scope: scope)
                #expect(refused.status == .unauthorized && browser == nil && refused.headers[.setCookie] == nil)
            }
            let key = acme.tenant.keys[.dpo]!.token.value
            let crossSite = try await acme.raw(
                .post, "/console/sign-in",
                headers: [
                    .contentType: "application/x-www-form-urlencoded",
                    HTTPField.Name("Origin")!: "https://evil.example",
                ],
                body: "key=\(key)")
            #expect(crossSite.status == .forbidden && crossSite.headers[.setCookie] == nil, "no login CSRF")
            let garbage = try await acme.raw(
                .post, "/console/sign-in", headers: [.contentType: "application/x-www-form-urlencoded"],
                body: "key=clk_nope")
            #expect(garbage.status == .unauthorized)

            let (signedIn, browser) = try await ConsoleBrowser.signIn(acme)
            #expect(signedIn.status == .seeOther && signedIn.headers[.location] == "/console")
            let cookie = try #require(signedIn.headers[.setCookie])
            #expect(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"))
            #expect(!cookie.contains("Secure"), "not over TLS here")
            let console = try #require(browser)
            let overview = try await console.get("/console")
            #expect(overview.status == .ok && overview.text.contains("<h1>Overview</h1>"))
            #expect(!overview.text.contains(acme.tenant.keys[.dpo]!.token.value), "the key never appears in a page")
            #expect(
                overview.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("frame-ancestors 'none'") == true
            )
        }
    }

    /// Issue 21, finding 8: behind TLS the cookie is `__Host-` prefixed (before, `consentd_console` on /console,
    /// which a sibling subdomain could overwrite), and a bare-named cookie is not read there.
    @Test func theCookieIsHostPrefixedAndSecureBehindTLS() async throws {
        var policy = CollectionPolicy.default
        policy.publicBaseURL = "https://consent.example.com"
        try await withTenants(["acme"], collection: policy) { tenants, _ in
            let acme = tenants[0]
            let (reply, _) = try await ConsoleBrowser.signIn(acme)
            let setCookie = try #require(reply.headers[.setCookie])
            #expect(setCookie.hasPrefix("__Host-consentd_console="), "\(setCookie)")
            let attributes = Set(
                setCookie.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(attributes.isSuperset(of: ["Secure", "HttpOnly", "Path=/", "SameSite=Strict"]), "\(setCookie)")
            #expect(!setCookie.lowercased().contains("domain="))
            let value = try #require(setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last)
            let page = try await acme.raw(.get, "/console", headers: [.cookie: "__Host-consentd_console=\(value)"])
            #expect(page.status == .ok)
            let bare = try await acme.raw(.get, "/console", headers: [.cookie: "consentd_console=\(value)"])
            #expect(bare.status == .seeOther && bare.headers[.location] == "/console/sign-in")
        }
    }

    @Test func formsNeedTheirCSRFTokenAndThisOrigin() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393339000001", purposes: ["marketing"], noticeId: notice)
            _ = try await acme.optIn("+393339000003", purposes: ["marketing"], noticeId: notice)
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            let (code, seal) = try await console.erasureCode("+393339000001")
            #expect(code.count == 6 && seal.count == 64)
            let fields = ["subject": "+393339000001", "channel": "whatsapp", "confirm": code, "seal": seal]
            let before = try await database.footprint()
            let noToken = try await console.post("/console/subject/erase", fields, csrf: "")
            let wrongToken = try await console.post(
                "/console/subject/erase", fields, csrf: String(console.csrf.reversed()))
            let elsewhere = try await console.post("/console/subject/erase", fields, origin: "https://evil.example")
            for reply in [noToken, wrongToken, elsewhere] {
                #expect(reply.status == .forbidden && reply.text.contains("id=\"refused\""))
            }
            // Without the cookie (what SameSite=Strict makes of a cross-site post) the post is refused too.
            let anonymous = try await acme.raw(
                .post, "/console/subject/erase", headers: [.contentType: "application/x-www-form-urlencoded"],
                body: "subject=%2B393339000001&channel=whatsapp&confirm=\(code)&seal=\(seal)&csrf=\(console.csrf)")
            #expect(anonymous.status == .forbidden)
            #expect(try await database.footprint() == before)

            // Issue 21, finding 8: the identifier's last four characters no longer confirm anything; only the code
            // shown on this person's page does, and not for another person.
            let other = code.first == "A" ? "B" + code.dropFirst() : "A" + code.dropFirst()
            for (confirm, subject) in [("0001", "+393339000001"), (other, "+393339000001"), (code, "+393339000003")] {
                let refused = try await console.post(
                    "/console/subject/erase", fields.merging(["confirm": confirm, "subject": subject]) { $1 })
                #expect(refused.status == .unprocessableContent && refused.text.contains("Nothing was erased"))
            }
            #expect(try await database.footprint() == before)
            let erased = try await console.post(
                "/console/subject/erase", fields.merging(["confirm": " \(code.lowercased()) "]) { $1 })
            #expect(erased.status == .ok && erased.text.contains("id=\"erased\""), "\(erased.text)")
            #expect(
                try await acme.check("+393339000001", purpose: "marketing").decoded(CheckReply.self).allowed == false)
        }
    }

    @Test func lookupWithdrawAndExportUseTheSameLedger() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(
                purposes: ["marketing", "shipping_update"], text: "Offers & <updates> on WhatsApp")
            _ = try await acme.optIn("+393339000002", purposes: ["marketing", "shipping_update"], noticeId: notice)
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            let page = try await console.post(
                "/console/subject", ["subject": "+39 333 900 0002", "channel": "whatsapp"])
            #expect(
                page.status == .ok && page.text.contains("Offers &amp; &lt;updates&gt; on WhatsApp"), "escaped as text")
            #expect(!page.text.contains(">nil<") && !page.text.contains("Optional("))
            let unknown = try await console.post(
                "/console/subject", ["subject": "+393339000999", "channel": "whatsapp"])
            #expect(unknown.status == .notFound)
            let invalid = try await console.post("/console/subject", ["subject": "12", "channel": "whatsapp"])
            #expect(invalid.status == .unprocessableContent)

            let withdrawn = try await console.post(
                "/console/subject/withdraw",
                ["subject": "+393339000002", "channel": "whatsapp", "purpose": "marketing"])
            #expect(withdrawn.status == .ok && withdrawn.text.contains("Withdrawn: marketing."))
            let check = try await acme.check("+393339000002", purpose: "marketing")
            #expect(try check.decoded(CheckReply.self).reason == "consent_withdrawn")

            let export = try await console.post(
                "/console/subject/export", ["subject": "+393339000002", "channel": "whatsapp"])
            #expect(export.status == .ok && export.headers[.contentDisposition]?.hasPrefix("attachment;") == true)
            #expect(try export.decoded(ExportReply.self).subject == "+393339000002")
        }
    }

    @Test func theImportsPageShowsEachImportsCountsAndItsReport() async throws {
        try await withTenants(["acme", "other"]) { tenants, _ in
            let (acme, other) = (tenants[0], tenants[1])
            let notice = try await acme.notice(purposes: ["marketing"])
            let file = "subject,purposes,collectedAt\n+393339100001,marketing,2025-01-01T00:00:00Z\nnope,marketing,x\n"
            let reply = try await ImportTests.upload(acme, file, notice: notice)
            let id = try reply.decoded(ImportTests.ImportReply.self).id
            _ = try await ImportTests.finished(acme, id)
            let (_, signedIn) = try await ConsoleBrowser.signIn(acme)
            let console = try #require(signedIn)
            let page = try await console.get("/console/imports")
            #expect(page.status == .ok)
            #expect(page.text.contains(#"aria-current="page">Imports"#), "\(page.text)")
            #expect(page.text.contains("/console/imports/\(id)/rejected"))
            #expect(page.text.contains("<td>completed</td><td>CSV</td><td>2</td><td>2 (100 %)</td><td>1</td>"))
            let report = try await console.get("/console/imports/\(id)/rejected")
            #expect(
                report.status == .ok && report.text.hasPrefix("line,outcome,reason\r\n3,invalid,"), "\(report.text)")
            #expect(!report.text.contains("nope"))
            // Another tenant's DPO sees neither the import nor its report.
            let (_, otherSignedIn) = try await ConsoleBrowser.signIn(other)
            let otherConsole = try #require(otherSignedIn)
            #expect(!(try await otherConsole.get("/console/imports").text.contains(id)))
            #expect(try await otherConsole.get("/console/imports/\(id)/rejected").status == .notFound)
        }
    }

    /// The Imports page's form: a browser's multipart body, its CSRF token checked before any of the file is
    /// read, the file streamed into the same import as the API's.
    @Test func aFileSentFromTheImportsPageIsImported() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            let form = try await console.get("/console/imports")
            #expect(form.text.contains(#"enctype="multipart/form-data""#) && form.text.contains(notice))
            let file = "subject,purposes,collectedAt\n+393339100101,marketing,2025-01-01T00:00:00Z\nnope,marketing,x\n"
            func multipart(_ parts: [(String, String?, String)]) -> String {
                var body = ""
                for (name, filename, value) in parts {
                    body += "--XyZzy\r\nContent-Disposition: form-data; name=\"\(name)\""
                    if let filename { body += "; filename=\"\(filename)\"\r\nContent-Type: text/csv" }
                    body += "\r\n\r\n\(value)\r\n"
                }
                return body + "--XyZzy--\r\n"
            }
            func send(_ body: String) async throws -> APIClient.Reply {
                try await acme.raw(
                    .post, "/console/imports",
                    headers: [
                        .cookie: "consentd_console=\(console.cookie)",
                        .contentType: "multipart/form-data; boundary=XyZzy",
                    ], body: body)
            }
            let before = try await database.count("SELECT count(*)::int8 FROM imports")
            // A forged token, and a file sent before the token, import nothing.
            let forged = try await send(
                multipart([
                    ("csrf", nil, "forged"), ("channel", nil, "whatsapp"), ("notice", nil, notice),
                    ("file", "list.csv", file),
                ]))
            #expect(forged.status == .forbidden)
            let fileFirst = try await send(
                multipart([("file", "list.csv", file), ("csrf", nil, console.csrf), ("channel", nil, "whatsapp")]))
            #expect(fileFirst.status == .forbidden)
            let noFile = try await send(
                multipart([("csrf", nil, console.csrf), ("channel", nil, "whatsapp"), ("notice", nil, notice)]))
            #expect(noFile.status == .badRequest)
            #expect(try await database.count("SELECT count(*)::int8 FROM imports") == before)

            let sent = try await send(
                multipart([
                    ("csrf", nil, console.csrf), ("channel", nil, "whatsapp"), ("notice", nil, notice),
                    ("format", nil, "csv"), ("file", "list.csv", file),
                ]))
            #expect(sent.status == .ok && sent.text.contains("2 row(s) received"), "\(sent.text)")
            let listed = try await acme.call(.get, "/v1/imports", as: .consentWrite)
            struct Listed: Decodable { let imports: [ImportTests.ImportReply] }
            let id = try #require(try listed.decoded(Listed.self).imports.first?.id)
            let done = try await ImportTests.finished(acme, id)
            #expect(done.counts["granted"] == 1 && done.counts["invalid"] == 1)
            // A file the rules refuse is said on the page, and nothing is kept.
            let wrongChannel = try await send(
                multipart([
                    ("csrf", nil, console.csrf), ("channel", nil, "sms"), ("notice", nil, notice),
                    ("file", "list.csv", file),
                ]))
            #expect(wrongChannel.status == .unprocessableContent && wrongChannel.text.contains("Nothing was imported"))
        }
    }

    @Test func theDPORecordsAnObjectionAndWorksTheOptOutQueue() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing", "shipping_update"])
            for person in ["+393339000003", "+393339000004"] {
                _ = try await acme.optIn(person, purposes: ["marketing", "shipping_update"], noticeId: notice)
            }
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            let subject = try await console.post(
                "/console/subject", ["subject": "+393339000003", "channel": "whatsapp"])
            #expect(subject.text.contains(#"id="object""#), "the subject page offers the objection")
            let objected = try await console.post(
                "/console/subject/object", ["subject": "+393339000003", "channel": "whatsapp"])
            #expect(objected.status == .ok && objected.text.contains("Withdrawn: marketing."), "\(objected.text)")
            #expect(
                try await acme.check("+393339000003", purpose: "marketing").decoded(CheckReply.self).allowed == false)
            #expect(
                try await acme.check("+393339000003", purpose: "shipping_update").decoded(CheckReply.self).allowed)

            #expect(try await console.get("/console/opt-outs").text.contains(#"id="no-reviews""#))
            _ = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": "+393339000004", "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339.format(Date()), "text": "please stop sending me <these> offers",
                ])
            let queue = try await console.get("/console/opt-outs")
            #expect(queue.text.contains("please stop sending me &lt;these&gt; offers"), "escaped: \(queue.text)")
            let range = try #require(
                queue.text.range(of: #"name="review" value="[0-9a-f-]+""#, options: .regularExpression))
            let review = String(queue.text[range].split(separator: "\"")[3])
            let resolved = try await console.post(
                "/console/opt-outs/resolve", ["review": review, "resolution": "withdraw_all"])
            #expect(resolved.status == .ok && resolved.text.contains("Withdrawn everything"), "\(resolved.text)")
            #expect(
                try await acme.check("+393339000004", purpose: "shipping_update").decoded(CheckReply.self).allowed
                    == false)
            let again = try await console.post("/console/opt-outs/resolve", ["review": review, "resolution": "keep"])
            #expect(again.status == .conflict)
        }
    }

    @Test func requestsAreCompletedAndCancelledFromTheQueue() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            for subject in ["+393339000003", "+393339000004"] {
                _ = try await acme.optIn(subject, purposes: ["marketing"], noticeId: notice)
            }
            let access = try await acme.post(
                "/v1/requests", as: .dpo, ["type": "access", "subject": "+393339000003", "channel": "whatsapp"])
            let erasure = try await acme.post(
                "/v1/requests", as: .dpo, ["type": "erasure", "subject": "+393339000004", "channel": "whatsapp"])
            let accessId = try access.decoded(SubjectRequestReply.self).id
            let erasureId = try erasure.decoded(SubjectRequestReply.self).id
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            let queue = try await console.get("/console/requests")
            #expect(
                queue.text.contains("/console/requests/\(accessId)")
                    && queue.text.contains("/console/requests/\(erasureId)"))

            let download = try await console.post("/console/requests/\(accessId)/complete", [:])
            #expect(download.status == .ok && download.headers[.contentDisposition]?.contains("export") == true)
            #expect(try download.decoded(ExportReply.self).subject == "+393339000003")
            let done = try await console.post("/console/requests/\(erasureId)/complete", [:])
            #expect(
                done.status == .seeOther && done.headers[.location] == "/console/requests/\(erasureId)?done=completed")
            #expect(
                try await acme.call(.get, "/v1/requests/\(erasureId)", as: .dpo).decoded(SubjectRequestReply.self)
                    .status == "completed")
            let again = try await console.post("/console/requests/\(erasureId)/cancel", [:])
            #expect(again.status == .conflict)
        }
    }

    @Test func auditVerificationIsRecordedAndReportsDownload() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let console = try #require(try await ConsoleBrowser.signIn(acme).1)
            #expect(try await console.get("/console").text.contains("<dd>never</dd>"))
            let verified = try await console.post("/console/audit/verify", [:])
            #expect(verified.status == .seeOther)
            #expect(try await console.get("/console/audit").text.contains("every hash and signature checks"))
            #expect(try await console.get("/console/audit?after=-2").status == .badRequest)
            #expect(try await console.get("/console/audit?after=x").status == .badRequest)
            #expect(try await console.get("/console/audit?after=-1").status == .ok)
            #expect(!(try await console.get("/console").text.contains("<dd>never</dd>")))
            let day = String(RFC3339.format(Date()).prefix(10))
            let csv = try await console.get("/console/audit/report?format=csv&from=\(day)&to=\(day)")
            #expect(csv.status == .ok && csv.headers[.contentType]?.hasPrefix("text/csv") == true)
            #expect(
                csv.text.contains("console.signed_in")
                    && csv.headers[.contentDisposition]?.hasPrefix("attachment") == true)
            #expect(
                try await console.get("/console/audit/report?format=pdf&from=\(day)&to=\(day)").status
                    == .unprocessableContent)
        }
    }

    @Test func signOutAndKeyRevocationEndTheSession() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let first = try #require(try await ConsoleBrowser.signIn(acme).1)
            let out = try await first.post("/console/sign-out", [:])
            #expect(out.status == .seeOther && out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await first.get("/console").status == .seeOther)

            let second = try #require(try await ConsoleBrowser.signIn(acme).1)
            #expect(try await second.get("/console").status == .ok)
            let keyId = acme.tenant.keys[.dpo]!.record.id.lowercased
            #expect(try await acme.call(.post, "/v1/keys/\(keyId)/revoke", as: .admin).status == .ok)
            #expect(try await second.get("/console").status == .seeOther, "a revoked key's session ends at once")
        }
    }

    /// The idle clock is moved back in the database rather than waited out: a slow machine must not fail it.
    @Test func anIdleSessionEnds() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await SeededTenant.make("acme", in: database)
        try await database.withClient { client in
            let store = ConsoleSessionStore(client: client, idleTimeout: 1800)
            let dpo = try #require(tenant.keys[.dpo])
            let caller = CallerIdentity(keyId: dpo.record.id, tenantId: tenant.tenant.id, scopes: [.dpo])
            let (token, session) = try await store.start(for: caller, logger: database.logger)
            #expect(try await store.resume(token, logger: database.logger)?.id == session.id)
            _ = try await database.count(
                "WITH s AS (UPDATE console_sessions SET last_seen_at = now() - interval '29 minutes' RETURNING 1) SELECT count(*)::int8 FROM s"
            )
            #expect(
                try await store.resume(token, logger: database.logger)?.id == session.id, "29 idle minutes: still live")
            _ = try await database.count(
                "WITH s AS (UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes' RETURNING 1) SELECT count(*)::int8 FROM s"
            )
            #expect(try await store.resume(token, logger: database.logger) == nil, "31 idle minutes: ended")
            _ = try await database.count(
                "WITH s AS (UPDATE console_sessions SET last_seen_at = now(), created_at = now() - interval '13 hours' RETURNING 1) SELECT count(*)::int8 FROM s"
            )
            #expect(try await store.resume(token, logger: database.logger) == nil, "older than 12 hours: ended")
        }
    }
}

@Suite struct ConsoleRenderingTests {
    @Test func chartScalesToRoundNumbers() {
        #expect(
            [0, 1, 2, 3, 7, 10, 11, 26, 99, 100, 101, 4_999].map(WeeklyChart.niceCeiling)
                == [0, 1, 2, 5, 10, 10, 20, 50, 100, 100, 200, 5_000])
        let week = Date(timeIntervalSince1970: 1_763_942_400)
        let chart = WeeklyChart([
            WeeklyActivity(weekStart: week, granted: 10, withdrawn: 5),
            WeeklyActivity(weekStart: week.addingTimeInterval(7 * 86_400), granted: 0, withdrawn: 2),
        ])
        #expect(chart.maximum == 10 && chart.bars.count == 4)
        let plot = WeeklyChart.plotBottom - WeeklyChart.plotTop
        #expect(chart.bars.map(\.height) == [plot, plot / 2, 0, Int((Double(plot) / 5).rounded())])
        #expect(
            chart.bars.allSatisfy { $0.y + $0.height == WeeklyChart.plotBottom && $0.x + $0.width <= WeeklyChart.width }
        )
        #expect(chart.bars[0].title == "Week of 2025-11-24: 10 opt-ins")
        #expect(WeeklyChart([]).bars.isEmpty)
    }
}

@Suite struct RateLimitTests {
    /// A key past its burst gets 429 with Retry-After in the contract's shape; another key of the same tenant and
    /// scope is untouched.
    @Test func aFloodingKeyIsLimitedAndNobodyElseIs() async throws {
        let database = try await TestDatabase.fresh()
        let acme = try await SeededTenant.make("acme", in: database)
        let other = try await database.withClient(\.owner) { client in
            try await APIKeyStore(client: client).create(
                tenantId: acme.tenant.id, scopes: [.consentCheck], label: "other sender", logger: database.logger)
        }
        var limits = RateLimits.default
        limits.byScope[.consentCheck] = .init(perSecond: 0.01, burst: 5)
        try await withRunningApp(database, rateLimits: limits) { client in
            let api = APIClient(client: client, tenant: acme)
            let body = ["subject": "+393331230000", "channel": "whatsapp", "purpose": "marketing"]
            for _ in 0..<5 { #expect(try await api.post("/v1/checks", as: .consentCheck, body).status == .ok) }
            let limited = try await api.post("/v1/checks", as: .consentCheck, body)
            #expect(try limited.status == .tooManyRequests && limited.error.code == "rate_limited")
            let retryAfter = try #require(limited.headers[HTTPField.Name("Retry-After")!].flatMap(Int.init))
            #expect((1...100).contains(retryAfter))
            let otherReply = try await client.execute(
                uri: "/v1/checks", method: .post,
                headers: [.authorization: "Bearer \(other.token.value)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"subject":"+393331230000","channel":"whatsapp","purpose":"marketing"}"#)
            ) { $0.status }
            #expect(otherReply == .ok, "another key is not starved")
            #expect(try await api.call(.get, "/v1/purposes", as: .admin).status == .ok, "nor another scope's key")
        }
    }
}

extension String {
    /// The first capture group of `pattern`'s first match.
    fileprivate func firstMatch(_ pattern: String) -> String? {
        guard let expression = try? NSRegularExpression(pattern: pattern),
            let match = expression.firstMatch(in: self, range: NSRange(startIndex..., in: self)),
            match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: self)
        else { return nil }
        return String(self[range])
    }
}
