import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// `/console`: the DPO's web console. Server-rendered pages (swift-mustache), no script; every page is the same
/// data the API serves, through the same store functions and the same route logic for erasure, requests and audit.
///
/// Sign-in exchanges a `dpo` key for a session cookie (HttpOnly, SameSite=Strict, Secure over TLS, path /console).
/// Every form carries the session's CSRF token, and a POST whose `Origin` is not this service's is refused: a
/// cross-site page can neither send the cookie (SameSite) nor know the token.
struct ConsoleRoutes {
    let database: ConsentDatabase
    let ledger: ConsentLedger
    let keys: APIKeyStore
    let sessions: ConsoleSessionStore
    let subjectRights: SubjectRightsRoutes
    let audit: AuditRoutes
    let collection: CollectionPolicy
    var exporter: SubjectExporter { subjectRights.exporter }
    var reports: ConsentReports { database.reports }

    static let cookieName = "consentd_console"
    static let eventsPerPage = 50

    func register(on router: Router<ConsentRequestContext>) {
        router.get("/console") { request, context in try await overview(request, context: context) }
        router.get("/console/sign-in") { request, context in try await signInPage(request, context: context) }
        router.post("/console/sign-in") { request, context in try await signIn(request, context: context) }
        router.post("/console/sign-out") { request, context in try await signOut(request, context: context) }
        router.get("/console/subject") { request, context in try await lookupPage(request, context: context) }
        router.post("/console/subject") { request, context in try await lookup(request, context: context) }
        router.post("/console/subject/export") { request, context in try await export(request, context: context) }
        router.post("/console/subject/withdraw") { request, context in try await withdraw(request, context: context) }
        router.post("/console/subject/erase") { request, context in try await erase(request, context: context) }
        router.get("/console/requests") { request, context in try await requestList(request, context: context) }
        router.get("/console/requests/{id}") { request, context in try await requestPage(request, context: context) }
        router.post("/console/requests/{id}/complete") { request, context in try await complete(request, context: context) }
        router.post("/console/requests/{id}/cancel") { request, context in try await cancel(request, context: context) }
        router.get("/console/audit") { request, context in try await auditPage(request, context: context) }
        router.post("/console/audit/verify") { request, context in try await verify(request, context: context) }
        router.get("/console/audit/report") { request, context in try await report(request, context: context) }
        router.get("/assets/console.css") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "public, max-age=300"],
                body: .init(byteBuffer: ByteBuffer(string: ConsoleStyle.css)))
        }
    }

    // MARK: sessions

    func session(_ request: Request, context: ConsentRequestContext) async throws -> ConsoleSession? {
        guard let token = Self.cookie(request).flatMap(TenantToken.init) else { return nil }
        return try await sessions.resume(token, logger: context.logger)
    }

    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == cookieName {
                    return String(parts[1]).trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    /// Served over TLS (a public https URL, or a trusted proxy that says so): the cookie is then Secure.
    func secure(_ request: Request) -> Bool {
        if collection.publicBaseURL?.hasPrefix("https://") == true { return true }
        return collection.trustForwardedFor && request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https"
    }

    func cookieHeader(_ value: String, request: Request, maxAge: Int? = nil) -> String {
        var parts = ["\(Self.cookieName)=\(value)", "Path=/console", "HttpOnly", "SameSite=Strict"]
        if let maxAge { parts.append("Max-Age=\(maxAge)") }
        if secure(request) { parts.append("Secure") }
        return parts.joined(separator: "; ")
    }

    static func redirect(_ location: String, headers extra: HTTPFields = [:]) -> Response {
        var headers = HTMLPage.headers(allowingScripts: false, referrerPolicy: "same-origin")
        headers[.location] = location
        headers.append(contentsOf: extra)
        return Response(status: .seeOther, headers: headers)
    }

    struct Refusal: Error {
        let status: HTTPResponse.Status
        let reason: String
    }

    /// A form post from a signed-in DPO on this service's own pages, with its fields; a `Refusal` otherwise.
    func form(_ request: Request, context: ConsentRequestContext) async throws -> (ConsoleSession, [String: String]) {
        try sameOrigin(request)
        guard let session = try await session(request, context: context) else {
            throw Refusal(status: .forbidden, reason: "Your session has ended or this form did not come from the console; nothing was changed. Sign in again.")
        }
        let fields = FormBody.decode(try await request.body.collect(upTo: 64 * 1024).readableBytesView)
        guard ConstantTime.equal(Array((fields["csrf"] ?? "").utf8), Array(session.csrfToken.utf8)) else {
            throw Refusal(status: .forbidden, reason: "This form is out of date or did not come from the console; nothing was changed.")
        }
        return (session, fields)
    }

    /// A browser's `Origin`, when it sends one, must be this service's own.
    func sameOrigin(_ request: Request) throws {
        guard let origin = request.headers[.origin] else { return }
        let own = CrossOrigin.ownOrigins(request, publicBaseURL: collection.publicBaseURL)
        guard let parsed = AllowedOrigin(origin), own.contains(parsed) else {
            throw Refusal(status: .forbidden, reason: "This form was sent from another site; nothing was changed.")
        }
    }

    /// Runs a form handler, turning refusals into the refused page.
    func posting(
        _ request: Request, context: ConsentRequestContext,
        _ body: (ConsoleSession, [String: String]) async throws -> Response
    ) async throws -> Response {
        do {
            let (session, fields) = try await form(request, context: context)
            return try await body(session, fields)
        } catch let refusal as Refusal {
            return render("refused", ["title": "Refused", "reason": refusal.reason], session: nil, status: refusal.status)
        }
    }

    // MARK: rendering

    func render(
        _ template: String, _ data: [String: Any], session: ConsoleSession?, status: HTTPResponse.Status = .ok,
        nav: String? = nil
    ) -> Response {
        var context = data
        if let session {
            context["signedIn"] = true
            context["csrf"] = session.csrfToken
        }
        if let nav { context["nav"] = [nav: true] }
        let html = ConsoleTemplates.library.render(context, withTemplate: template) ?? ""
        return Response(
            status: status, headers: HTMLPage.headers(allowingScripts: false, referrerPolicy: "same-origin"), body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func time(_ date: Date?) -> String {
        guard let date else { return "" }
        let text = RFC3339.format(date)
        return text.count >= 16 ? String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC" : text
    }

    // MARK: sign-in

    func signInPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        if try await session(request, context: context) != nil { return Self.redirect("/console") }
        return render("signIn", ["title": "Sign in"], session: nil)
    }

    /// A sign-in posted from another site is refused too: it would sign the DPO's browser into someone else's
    /// session (login CSRF).
    func signIn(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        do {
            try sameOrigin(request)
        } catch let refusal as Refusal {
            return render("refused", ["title": "Refused", "reason": refusal.reason], session: nil, status: refusal.status)
        }
        let fields = FormBody.decode(try await request.body.collect(upTo: 16 * 1024).readableBytesView)
        let refused = render(
            "signIn", ["title": "Sign in", "problem": "That key is unknown, revoked, or lacks the dpo scope."], session: nil,
            status: .unauthorized)
        guard let token = APIKeyToken(parsing: Substring((fields["key"] ?? "").trimmingCharacters(in: .whitespaces))),
            let identity = try await keys.authenticate(token, logger: context.logger), identity.has(.dpo)
        else { return refused }
        let (cookie, _) = try await sessions.start(for: identity, logger: context.logger)
        return Self.redirect("/console", headers: [.setCookie: cookieHeader(cookie.text, request: request)])
    }

    func signOut(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, _ in
            try await sessions.end(session, logger: context.logger)
            return Self.redirect("/console/sign-in", headers: [.setCookie: cookieHeader("", request: request, maxAge: 0)])
        }
    }

    // MARK: overview

    func overview(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        let tenantId = session.caller.tenantId
        let now = Date()
        let rows = try await reports.consents(tenantId: tenantId, from: now.addingTimeInterval(-84 * 86_400), to: now, logger: context.logger)
        let weeks = try await reports.weekly(tenantId: tenantId, weeks: 12, now: now, logger: context.logger)
        let pending = try await database.subjectRequests(tenantId, status: .pending, logger: context.logger)
        let due = pending.filter { $0.dueAt <= now.addingTimeInterval(7 * 86_400) }.sorted { $0.dueAt < $1.dueAt }
        try await audit.sequencer.catchUp(tenantId: tenantId, logger: context.logger)
        let checkpoint = try await audit.reader.latestCheckpoint(tenantId: tenantId, logger: context.logger)
        let verifications = try await database.auditVerifications.latest(tenantId: tenantId, logger: context.logger)
        let chart = WeeklyChart(weeks)
        var data: [String: Any] = [
            "title": "Overview",
            "hasActive": !rows.isEmpty,
            "active": rows.map {
                ["purpose": $0.purpose, "channel": $0.channel, "active": $0.active, "granted": $0.granted, "withdrawn": $0.withdrawn]
            },
            "chart": [
                "bars": chart.bars.map {
                    ["x": $0.x, "y": $0.y, "width": $0.width, "height": $0.height, "kind": $0.kind, "title": $0.title]
                },
                "labels": chart.labels.map { ["x": $0.x, "text": $0.text] },
                "ticks": chart.ticks.map { ["y": $0.y, "value": $0.value] },
            ],
            "weeks": weeks.map { ["week": RFC3339Day.format($0.weekStart), "granted": $0.granted, "withdrawn": $0.withdrawn] },
            "hasDue": !due.isEmpty,
            "due": due.map {
                ["id": $0.id.lowercased, "type": $0.type.rawValue.capitalized, "dueAt": Self.time($0.dueAt), "overdue": $0.isOverdue(at: now)]
            },
        ]
        if let checkpoint { data["checkpoint"] = ["size": checkpoint.size, "issuedAt": Self.time(checkpoint.issuedAt)] }
        if let success = verifications.lastSuccess {
            data["verified"] = ["verifiedAt": Self.time(success.verifiedAt), "treeSize": success.treeSize]
        }
        if let last = verifications.last, !last.ok {
            data["lastFailure"] = ["verifiedAt": Self.time(last.verifiedAt), "problem": last.problem ?? "unknown"]
        }
        return render("overview", data, session: session, nav: "overview")
    }

    // MARK: subjects

    func channelOptions(_ selected: MessageChannel?) -> [[String: Any]] {
        MessageChannel.allCases.map {
            ["value": $0.rawValue, "label": SelfServiceText.channelName($0), "selected": $0 == selected]
        }
    }

    func lookupPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        return render("lookup", ["title": "Subjects", "channels": channelOptions(.whatsapp)], session: session, nav: "subject")
    }

    enum SubjectInput {
        case valid(SubjectIdentifier)
        /// The lookup page again, saying what is wrong.
        case invalid(Response)
    }

    /// The identifier from a form, or the lookup page again with the problem.
    func identifier(_ fields: [String: String], session: ConsoleSession) -> SubjectInput {
        let channel = MessageChannel(rawValue: fields["channel"] ?? "") ?? .whatsapp
        guard let subject = try? SubjectIdentifier(fields["subject"] ?? "", channel: channel) else {
            return .invalid(render(
                "lookup",
                [
                    "title": "Subjects", "channels": channelOptions(channel), "query": ["subject": fields["subject"] ?? ""],
                    "problem": channel.usesPhoneNumbers
                        ? "That is not a phone number in international form, such as +39 333 123 4567."
                        : "That is not an e-mail address.",
                ], session: session, status: .unprocessableContent, nav: "subject"))
        }
        return .valid(subject)
    }

    func lookup(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, fields in
            switch identifier(fields, session: session) {
            case .invalid(let page): return page
            case .valid(let subject): return try await subjectPage(subject, session: session, context: context)
            }
        }
    }

    func subjectPage(
        _ subject: SubjectIdentifier, session: ConsoleSession, context: ConsentRequestContext, flash: String? = nil,
        problem: String? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let export = try await exporter.export(subject, tenantId: session.caller.tenantId, logger: context.logger) else {
            return render(
                "lookup",
                [
                    "title": "Subjects", "channels": channelOptions(subject.channel), "query": ["subject": subject.value],
                    "problem": "No data is held about this person on this channel.",
                ], session: session, status: .notFound, nav: "subject")
        }
        let now = Date()
        let window =
            export.window.isOpen(at: now)
            ? "open until \(Self.time(export.window.closesAt))"
            : export.window.closesAt.map { "closed since \(Self.time($0))" } ?? "never opened"
        var data: [String: Any] = [
            "title": "Subject",
            "channels": channelOptions(subject.channel),
            "query": ["subject": subject.value],
            "identifier": subject.value,
            "channel": subject.channel.rawValue,
            "subject": [
                "identifier": subject.value, "channel": subject.channel.rawValue,
                "channelLabel": SelfServiceText.channelName(subject.channel), "ref": export.subjectRef.lowercased,
                "firstSeenAt": Self.time(export.firstSeenAt), "window": window,
            ],
            "consents": export.consents.map { consent -> [String: Any] in
                [
                    "purpose": consent.purpose.key, "purposeName": consent.purpose.name, "status": consent.status,
                    "grantedAt": consent.grantedAt.map { Self.time($0) } ?? "not yet",
                    "revokedAt": templateValue(consent.revokedAt.map { Self.time($0) }),
                    "revokeSource": consent.revokeSource?.rawValue ?? "",
                    "noticeText": consent.notice.text, "noticeLanguage": consent.notice.language,
                    "noticeHash": consent.notice.textSha256,
                    "active": consent.status == "granted" || consent.status == "pending",
                    "evidence": consent.evidence.map { collection -> [String: Any] in
                        [
                            "collectedAt": Self.time(collection.collectedAt), "method": collection.method.rawValue,
                            "pageUrl": collection.provenance?.pageUrl ?? "(cleared by retention)",
                            "userAgent": templateValue(collection.provenance?.userAgent),
                            "ipAddress": templateValue(collection.provenance?.ipAddress),
                        ]
                    },
                ]
            },
            "timeline": export.auditEvents.map { event -> [String: Any] in
                let record = event.record
                var detail: [String] = []
                if case .string(let purpose)? = record.data["purpose"] { detail.append(purpose) }
                if case .string(let source)? = record.data["source"] { detail.append("source \(source)") }
                return [
                    "at": record.at, "action": record.action, "seq": record.seq, "actor": record.actor,
                    "detail": detail.joined(separator: ", "),
                ]
            },
        ]
        if let flash { data["flash"] = flash }
        if let problem { data["problem"] = problem }
        return render("subject", data, session: session, status: status, nav: "subject")
    }

    func export(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, fields in
            guard case .valid(let subject) = identifier(fields, session: session),
                let export = try await exporter.export(subject, tenantId: session.caller.tenantId, logger: context.logger)
            else { return render("refused", ["title": "Not found", "reason": "No data is held about this person."], session: session, status: .notFound) }
            return Self.download(
                SubjectRightsRoutes.canonical(SubjectExportDocument.json(export)), type: "application/json",
                filename: "subject-\(export.subjectRef.lowercased).json")
        }
    }

    static func download(_ body: [UInt8], type: String, filename: String) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: type, .cacheControl: "no-store",
                .contentDisposition: "attachment; filename=\"\(filename)\"",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    func withdraw(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, fields in
            guard case .valid(let subject) = identifier(fields, session: session),
                let purpose = try? Input.purpose(fields["purpose"] ?? "")
            else { return render("refused", ["title": "Refused", "reason": "The form was incomplete; nothing was changed."], session: session, status: .badRequest) }
            let result = try await database.commit(
                ledger.revoke(subject, purposes: [purpose], source: .dpo, caller: session.caller), logger: context.logger)
            return try await subjectPage(
                subject, session: session, context: context,
                flash: result.revoked.isEmpty ? "Nothing to withdraw." : "Withdrawn: \(purpose).")
        }
    }

    /// The last four characters of the identifier: the DPO types them to confirm they erase the right person.
    static func confirmation(_ subject: SubjectIdentifier) -> String { String(subject.value.suffix(4)).lowercased() }

    func erase(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, fields in
            guard case .valid(let subject) = identifier(fields, session: session) else {
                return render("refused", ["title": "Refused", "reason": "The form was incomplete; nothing was changed."], session: session, status: .badRequest)
            }
            guard (fields["confirm"] ?? "").trimmingCharacters(in: .whitespaces).lowercased() == Self.confirmation(subject) else {
                return try await subjectPage(
                    subject, session: session, context: context,
                    problem: "Type the last four characters of the identifier to confirm the erasure. Nothing was erased.",
                    status: .unprocessableContent)
            }
            let erased = try await database.commit(
                subjectRights.desk.erase(subject, objection: false, caller: session.caller), logger: context.logger)
            return render(
                "erased", ["title": "Erased", "erasedAt": Self.time(erased.erasedAt), "suppressed": erased.suppressed],
                session: session, nav: "subject")
        }
    }

    // MARK: requests

    static func requestView(_ record: SubjectRequestRecord, now: Date) -> [String: Any] {
        [
            "id": record.id.lowercased, "type": record.type.rawValue.capitalized, "status": record.status.rawValue,
            "receivedAt": time(record.receivedAt), "dueAt": time(record.dueAt), "overdue": record.isOverdue(at: now),
            "subjectRef": record.subjectRef.lowercased, "closedAt": templateValue(record.closedAt.map { time($0) }),
            "pending": record.status == .pending,
            "completeLabel": record.type == .erasure ? "Carry out the erasure" : "Complete and download the export",
        ]
    }

    func requestList(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        let records = try await database.subjectRequests(session.caller.tenantId, status: nil, logger: context.logger)
        let now = Date()
        let ordered = records.sorted {
            ($0.status == .pending ? 0 : 1, $0.dueAt) < ($1.status == .pending ? 0 : 1, $1.dueAt)
        }
        return render(
            "requests", ["title": "Requests", "requests": ordered.map { Self.requestView($0, now: now) }], session: session,
            nav: "requests")
    }

    func requestId(_ context: ConsentRequestContext) -> UUID? {
        context.parameters.get("id").flatMap(UUID.init(uuidString:))
    }

    func requestPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        var record: SubjectRequestRecord?
        if let id = requestId(context) {
            record = try await database.subjectRequest(id, tenantId: session.caller.tenantId, logger: context.logger)
        }
        guard let record else {
            return render("refused", ["title": "Not found", "reason": "No request has this id."], session: session, status: .notFound)
        }
        let flash = request.uri.queryParameters.get("done").map { "The request was \($0)." }
        return render(
            "request",
            ["title": "\(record.type.rawValue.capitalized) request", "request": Self.requestView(record, now: Date()), "flash": templateValue(flash)],
            session: session, nav: "requests")
    }

    func complete(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, _ in
            guard let id = requestId(context) else {
                return render("refused", ["title": "Not found", "reason": "No request has this id."], session: session, status: .notFound)
            }
            let completed: CompletedRequest
            do {
                completed = try await subjectRights.complete(id, caller: session.caller, logger: context.logger)
            } catch let error as SubjectRightsError {
                return render("refused", ["title": "Refused", "reason": Self.describe(error)], session: session, status: .conflict)
            }
            if case .exported(let export?) = completed.fulfilment {
                return Self.download(
                    SubjectRightsRoutes.canonical(SubjectExportDocument.json(export)), type: "application/json",
                    filename: "request-\(id.lowercased)-export.json")
            }
            return Self.redirect("/console/requests/\(id.lowercased)?done=completed")
        }
    }

    func cancel(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, _ in
            guard let id = requestId(context) else {
                return render("refused", ["title": "Not found", "reason": "No request has this id."], session: session, status: .notFound)
            }
            do {
                _ = try await subjectRights.cancel(id, caller: session.caller, logger: context.logger)
            } catch let error as SubjectRightsError {
                return render("refused", ["title": "Refused", "reason": Self.describe(error)], session: session, status: .conflict)
            }
            return Self.redirect("/console/requests/\(id.lowercased)?done=cancelled")
        }
    }

    static func describe(_ error: SubjectRightsError) -> String {
        switch error {
        case .requestNotPending(let status): "The request is already \(status.rawValue)."
        case .requestNotFound: "No request has this id."
        default: "The request cannot be changed."
        }
    }

    // MARK: audit

    func auditPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        let tenantId = session.caller.tenantId
        var after: Int64?
        if let raw = request.uri.queryParameters.get("after") {
            guard let value = Int64(raw), value >= -1 else {
                return render(
                    "refused", ["title": "Refused", "reason": "'after' must be a sequence number of -1 or more."],
                    session: session, status: .badRequest)
            }
            after = value
        }
        try await audit.sequencer.catchUp(tenantId: tenantId, logger: context.logger)
        let size = try await audit.reader.latestCheckpoint(tenantId: tenantId, logger: context.logger)?.size ?? 0
        let page = try await audit.reader.events(
            tenantId: tenantId, filter: AuditEventFilter(after: after, below: size, from: nil, to: nil),
            limit: Self.eventsPerPage, logger: context.logger)
        let verification = try await database.auditVerifications.latest(tenantId: tenantId, logger: context.logger).last
        let today = Date()
        var data: [String: Any] = [
            "title": "Audit log",
            "events": page.map { event -> [String: Any] in
                [
                    "seq": event.record.seq, "at": event.record.at, "action": event.record.action, "actor": event.record.actor,
                    "subjectRef": event.record.subjectRef?.lowercased ?? "",
                ]
            },
            "report": ["from": RFC3339Day.format(today.addingTimeInterval(-30 * 86_400)), "to": RFC3339Day.format(today)],
        ]
        if page.count == Self.eventsPerPage, let last = page.last { data["next"] = last.record.seq }
        if after != nil { data["previous"] = "-1" }
        if let verification {
            data["verification"] = [
                "ok": verification.ok, "verifiedAt": Self.time(verification.verifiedAt), "treeSize": verification.treeSize,
                "problem": verification.problem ?? "",
            ]
        }
        return render("audit", data, session: session, nav: "audit")
    }

    func verify(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(request, context: context) { session, _ in
            _ = try await audit.verify(caller: session.caller, logger: context.logger)
            return Self.redirect("/console/audit")
        }
    }

    /// `?format=csv|ndjson|html&from=YYYY-MM-DD&to=YYYY-MM-DD`: the events of those days (UTC, both included).
    func report(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let session = try await session(request, context: context) else { return Self.redirect("/console/sign-in") }
        let query = request.uri.queryParameters
        guard let format = query.get("format").flatMap(AuditReportFormat.init(rawValue:)),
            let from = query.get("from").flatMap({ RFC3339.parse("\($0)T00:00:00Z") }),
            let lastDay = query.get("to").flatMap({ RFC3339.parse("\($0)T00:00:00Z") }), from <= lastDay
        else {
            return render(
                "refused", ["title": "Refused", "reason": "Choose a format and a period whose start is not after its end."],
                session: session, status: .unprocessableContent)
        }
        let to = lastDay.addingTimeInterval(86_400)
        try await audit.sequencer.catchUp(tenantId: session.caller.tenantId, logger: context.logger)
        guard let checkpoint = try await audit.reader.latestCheckpoint(tenantId: session.caller.tenantId, logger: context.logger)
        else { return render("refused", ["title": "Refused", "reason": "The log has no checkpoint yet."], session: session, status: .serviceUnavailable) }
        let name = "audit-\(RFC3339Day.format(from))-to-\(RFC3339Day.format(lastDay)).\(format.fileExtension)"
        return try await audit.report(
            format, from: from, to: to, checkpoint: checkpoint, caller: session.caller, logger: context.logger,
            headers: [.contentDisposition: "attachment; filename=\"\(name)\"", .cacheControl: "no-store"])
    }
}

/// An optional value for a template: Mustache treats an `Optional` stored as `Any` as present (and prints "nil"), so
/// absent values become `false`, which a section skips and a variable renders as nothing.
func templateValue<Value>(_ value: Value?) -> Any { value.map { $0 as Any } ?? false }

extension AuditReportFormat {
    var fileExtension: String {
        switch self {
        case .csv: "csv"
        case .ndjson: "ndjson"
        case .html: "html"
        }
    }
}
