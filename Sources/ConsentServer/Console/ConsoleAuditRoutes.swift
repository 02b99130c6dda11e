import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// `/console/audit`: the log a page at a time, newest verification, a full verification on demand
/// (`AuditRoutes.verify`, which records the run for the overview), and report downloads (`AuditRoutes.report`).
extension ConsoleRoutes {
    private static let eventsPerPage = 50

    func registerAudit(on router: Router<ConsentRequestContext>) {
        router.get("/console/audit") { request, context in try await auditPage(request, context: context) }
        router.post("/console/audit/verify") { request, context in try await verify(request, context: context) }
        router.get("/console/audit/report") { request, context in try await report(request, context: context) }
    }

    private func auditPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            let tenantId = session.caller.tenantId
            var after: Int64?
            if let raw = request.uri.queryParameters.get("after") {
                guard let value = Int64(raw), value >= -1 else {
                    return render(
                        Refusal(status: .badRequest, reason: "'after' must be a sequence number of -1 or more."),
                        session: session)
                }
                after = value
            }
            try await audit.sequencer.catchUp(tenantId: tenantId, logger: context.logger)
            let size = try await audit.reader.latestCheckpoint(tenantId: tenantId, logger: context.logger)?.size ?? 0
            let page = try await audit.reader.events(
                tenantId: tenantId, filter: AuditEventFilter(after: after, below: size, from: nil, to: nil),
                limit: Self.eventsPerPage, logger: context.logger)
            let verification = try await database.auditVerifications.latest(tenantId: tenantId, logger: context.logger)
                .last
            let today = Date()
            let view = AuditView(
                verification: verification.map {
                    AuditView.Verification(
                        ok: $0.ok, verifiedAt: Self.time($0.verifiedAt), treeSize: $0.treeSize,
                        failure: $0.problem ?? "")
                },
                reportFrom: RFC3339Day.format(today.addingTimeInterval(-30 * 86_400)),
                reportTo: RFC3339Day.format(today),
                events: page.map {
                    AuditView.Event(
                        seq: $0.record.seq, at: $0.record.at, action: $0.record.action, actor: $0.record.actor,
                        subjectRef: $0.record.subjectRef?.lowercased ?? "")
                },
                newer: after == nil ? nil : "-1",
                older: page.count == Self.eventsPerPage ? page.last?.record.seq : nil)
            return render(view, title: "Audit log", session: session)
        }
    }

    private func verify(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(CSRFOnlyForm.self, request, context: context) { session, _ in
            _ = try await audit.verify(caller: session.caller, logger: context.logger)
            return Self.redirect("/console/audit")
        }
    }

    /// `?format=csv|ndjson|html&from=YYYY-MM-DD&to=YYYY-MM-DD`: the events of those days (UTC, both included).
    private func report(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            let query = request.uri.queryParameters
            guard let format = query.get("format").flatMap(AuditReportFormat.init(rawValue:)),
                let from = query.get("from").flatMap({ RFC3339.parse("\($0)T00:00:00Z") }),
                let lastDay = query.get("to").flatMap({ RFC3339.parse("\($0)T00:00:00Z") }), from <= lastDay
            else {
                return render(
                    Refusal(
                        status: .unprocessableContent,
                        reason: "Choose a format and a period whose start is not after its end."),
                    session: session)
            }
            let to = lastDay.addingTimeInterval(86_400)
            try await audit.sequencer.catchUp(tenantId: session.caller.tenantId, logger: context.logger)
            guard
                let checkpoint = try await audit.reader.latestCheckpoint(
                    tenantId: session.caller.tenantId, logger: context.logger)
            else {
                return render(
                    Refusal(status: .serviceUnavailable, reason: "The log has no checkpoint yet."), session: session)
            }
            let name = "audit-\(RFC3339Day.format(from))-to-\(RFC3339Day.format(lastDay)).\(format.fileExtension)"
            return try await audit.report(
                format, from: from, to: to, checkpoint: checkpoint, caller: session.caller, logger: context.logger,
                headers: [.contentDisposition: "attachment; filename=\"\(name)\"", .cacheControl: "no-store"])
        }
    }
}

struct AuditView: ConsoleBody {
    static let template = PageTemplates.Name.consoleAudit
    static let section: ConsoleNav.Section? = .audit

    struct Verification: Sendable {
        let ok: Bool
        let verifiedAt: String
        let treeSize: Int64
        let failure: String
    }

    struct Event: Sendable {
        let seq: Int64
        let at: String
        let action: String
        let actor: String
        let subjectRef: String
    }

    let verification: Verification?
    /// The report form's default period: the last 30 days.
    let reportFrom: String
    let reportTo: String
    let events: [Event]
    /// `after=` of the newer page (the first), when this is not it.
    let newer: String?
    /// `after=` of the older page, when this one is full.
    let older: Int64?
}
