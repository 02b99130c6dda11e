import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// `/console`: the DPO's web console. Server-rendered pages (Mustache templates in `Templates/console`), no
/// script; every page is the same data the API serves, through the same store functions and the same route logic
/// for erasure, requests and audit. This file is what the pages share; each idea has its own file: the session
/// (ConsoleSessionRoutes), the overview, subjects, requests, the audit log, templates, opt-outs, imports and webhooks.
struct ConsoleRoutes {
    let database: ConsentDatabase
    let ledger: ConsentLedger
    let keys: APIKeyStore
    let sessions: ConsoleSessionStore
    let subjectRights: SubjectRightsRoutes
    let audit: AuditRoutes
    let collection: CollectionPolicy
    let templates: PageTemplates
    let imports: ImportStore
    let webhooks: WebhookEndpointStore
    /// The import form's file is read as it streams, each piece within `readTimeout` (`WatchedBody`).
    let bodyReads: BodyReadWatch
    let readTimeout: Duration

    func register(on router: Router<ConsentRequestContext>) {
        registerSession(on: router)
        registerOverview(on: router)
        registerSubjects(on: router)
        registerRequests(on: router)
        registerAudit(on: router)
        registerTemplates(on: router)
        registerOptOuts(on: router)
        registerImports(on: router)
        registerWebhooks(on: router)
        router.get("/assets/console.css") { _, _ in HTMLPage.stylesheet(ConsoleStyle.css) }
    }

    /// A page refused or not found, as a console page says it.
    struct Refusal: Error {
        let status: HTTPResponse.Status
        let reason: String
        var title = "Refused"
    }

    // MARK: rendering

    /// A console page: `body` in its template, between the console's head and foot.
    func render<Body: ConsoleBody>(
        _ body: Body, title: String, session: ConsoleSession?, status: HTTPResponse.Status = .ok,
        flash: String? = nil, problem: String? = nil
    ) -> Response {
        let page = ConsolePage(
            title: title, signedIn: session != nil, csrf: session?.csrfToken ?? "", nav: ConsoleNav(Body.section),
            flash: flash, problem: problem, page: body)
        return HTMLPage.response(templates.render(page), status: status, referrerPolicy: "same-origin")
    }

    func render(_ refusal: Refusal, session: ConsoleSession?) -> Response {
        render(RefusedView(reason: refusal.reason), title: refusal.title, session: session, status: refusal.status)
    }

    static func redirect(_ location: String, setting cookie: Cookie? = nil) -> Response {
        var headers = HTMLPage.headers(allowingScripts: false, referrerPolicy: "same-origin")
        headers[.location] = location
        var response = Response(status: .seeOther, headers: headers)
        if let cookie { response.setCookie(cookie) }
        return response
    }

    /// A page for a signed-in DPO; anyone else is sent to sign in.
    func signedIn(
        _ request: Request, context: ConsentRequestContext, _ page: (ConsoleSession) async throws -> Response
    ) async throws -> Response {
        guard let session = try await session(request, context: context) else {
            return Self.redirect("/console/sign-in")
        }
        return try await page(session)
    }

    /// Minutes are enough on a page: `2026-01-31 09:30 UTC`.
    static func time(_ date: Date) -> String {
        let text = RFC3339.format(date)
        return text.count >= 16 ? String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC" : text
    }
}

/// The data of one console page's template.
protocol ConsoleBody: PageView {
    /// The navigation entry the page belongs to, marked as the current one.
    static var section: ConsoleNav.Section? { get }
}

/// What `console/head` and `console/foot` render around every page; the page's own data is `page`, which each
/// template opens as a section (`{{#page}}…{{/page}}`), so the head's `csrf` stays reachable from inside it.
struct ConsolePage<Body: ConsoleBody>: PageView {
    static var template: PageTemplates.Name { Body.template }
    let title: String
    let signedIn: Bool
    let csrf: String
    let nav: ConsoleNav
    let flash: String?
    let problem: String?
    let page: Body
}

struct ConsoleNav: Sendable {
    enum Section: Sendable {
        case overview, subject, requests, optOuts, audit, templates, imports, webhooks
    }

    let overview: Bool
    let subject: Bool
    let requests: Bool
    let optOuts: Bool
    let audit: Bool
    let templates: Bool
    let imports: Bool
    let webhooks: Bool

    init(_ current: Section?) {
        overview = current == .overview
        subject = current == .subject
        requests = current == .requests
        optOuts = current == .optOuts
        audit = current == .audit
        templates = current == .templates
        imports = current == .imports
        webhooks = current == .webhooks
    }
}

struct RefusedView: ConsoleBody {
    static let template = PageTemplates.Name.consoleRefused
    static let section: ConsoleNav.Section? = nil
    let reason: String
}

extension AuditReportFormat {
    var fileExtension: String {
        switch self {
        case .csv: "csv"
        case .ndjson: "ndjson"
        case .html: "html"
        }
    }
}
