import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/imports`: a file sent from a form (the same store call as `POST /v1/imports`, streamed the same way),
/// the tenant's imports with their progress and outcome counts, and each one's report of the rows that were not
/// granted (the same CSV as `GET /v1/imports/{id}/rejected`).
extension ConsoleRoutes {
    func registerImports(on router: Router<ConsentRequestContext>) {
        router.get("/console/imports") { request, context in try await importsPage(request, context: context) }
        router.post("/console/imports") { request, context in try await importUpload(request, context: context) }
        router.get("/console/imports/{id}/rejected") { request, context in
            try await signedIn(request, context: context) { session in
                guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)),
                    try await imports.summary(id, tenantId: session.caller.tenantId, logger: context.logger) != nil
                else { return render(Refusal(status: .notFound, reason: "No such import."), session: session) }
                return ImportRoutes.rejectedReport(
                    id, imports: imports, tenantId: session.caller.tenantId, logger: context.logger)
            }
        }
    }

    private func importsPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            try await importsPage(session: session, context: context)
        }
    }

    private func importsPage(
        session: ConsoleSession, context: ConsentRequestContext, flash: String? = nil, problem: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let tenantId = session.caller.tenantId
        let all = try await imports.list(tenantId: tenantId, logger: context.logger)
        let notices = try await database.notices.list(tenantId: tenantId, logger: context.logger)
        return render(
            ImportsView(imports: all.map(ImportsView.Row.init), notices: notices.map(ImportsView.NoticeChoice.init)),
            title: "Imports", session: session, status: status, flash: flash, problem: problem)
    }

    /// The form's file, streamed into the same `ImportStore.receive` as the API's upload: its fields (the CSRF
    /// token first) are read and checked before any of the file, which the form sends last.
    private func importUpload(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        do throws(Refusal) {
            try sameOrigin(request)
        } catch {
            return render(error, session: nil)
        }
        guard let session = try await session(request, context: context), let keyId = session.caller.keyId else {
            return render(
                Refusal(status: .forbidden, reason: "Your session has ended; nothing was imported. Sign in again."),
                session: nil)
        }
        let body = WatchedBody(body: request.body, watch: bodyReads, channel: context.channel, timeout: readTimeout)
        let forged = Refusal(
            status: .forbidden,
            reason: "This form is out of date or did not come from the console; nothing was imported.")
        guard let upload = try? MultipartFileUpload(body: body, contentType: request.headers[.contentType] ?? "")
        else { return render(forged, session: nil) }
        let tokenMatches = { (fields: [String: String]) in
            ConstantTime.equal(Array((fields["csrf"] ?? "").utf8), Array(session.csrfToken.utf8))
        }
        guard let fields = try? await upload.readFields() else {
            // The page's form sends its token first and its file last: a body that does not parse that far with
            // the token in it did not come from the page.
            guard tokenMatches(upload.fields) else { return render(forged, session: nil) }
            return render(
                Refusal(status: .badRequest, reason: "The form had no file; nothing was imported."), session: session)
        }
        guard tokenMatches(fields) else { return render(forged, session: nil) }
        guard let channel = fields["channel"].flatMap(MessageChannel.init(rawValue:)),
            let noticeId = fields["notice"].flatMap(UUID.init(uuidString:))
        else {
            return try await importsPage(
                session: session, context: context, problem: "Choose a channel and a notice; nothing was imported.",
                status: .unprocessableContent)
        }
        let format: ImportFormat = fields["format"] == "ndjson" ? .ndjson : .csv
        let dryRun = fields["dryRun"] == "true"
        do {
            let summary = try await imports.receive(
                upload.file,
                parameters: ImportParameters(channel: channel, noticeId: noticeId, format: format, dryRun: dryRun),
                recordedBy: keyId, actor: session.caller.actor, tenantId: session.caller.tenantId,
                logger: context.logger)
            let what = dryRun ? "checked (dry run)" : "received; its rows are being recorded"
            return try await importsPage(
                session: session, context: context, flash: "\(summary.rowsRead) row(s) \(what).")
        } catch let refusal as ImportRefusal {
            return try await importsPage(
                session: session, context: context, problem: "The file was refused: \(refusal). Nothing was imported.",
                status: .unprocessableContent)
        } catch is MultipartUploadError {
            return render(
                Refusal(status: .badRequest, reason: "The upload was cut short; nothing was imported."),
                session: session)
        }
    }
}

struct ImportsView: ConsoleBody {
    static let template = PageTemplates.Name.consoleImports
    static let section: ConsoleNav.Section? = .imports

    struct Row: Sendable {
        let id: String
        let createdAt: String
        let status: String
        let running: Bool
        let dryRun: Bool
        let format: String
        let rows: Int
        let recorded: String
        let granted: Int
        let pending: Int
        let superseded: Int
        let suppressed: Int
        let duplicate: Int
        let invalid: Int
        let sameFileAs: String?
    }

    /// A notice the form offers, by its channel, version and the start of its text.
    struct NoticeChoice: Sendable {
        let id: String
        let label: String
    }

    let imports: [Row]
    let notices: [NoticeChoice]
}

extension ImportsView.NoticeChoice {
    init(_ notice: Notice) {
        id = notice.id.lowercased
        let text = notice.text.count > 60 ? String(notice.text.prefix(60)) + "…" : notice.text
        label = "\(notice.channel.rawValue), v\(notice.version), \(notice.language): \(text)"
    }
}

extension ImportsView.Row {
    init(_ summary: ImportSummary) {
        id = summary.id.lowercased
        createdAt = ConsoleRoutes.time(summary.createdAt)
        status = summary.status.rawValue
        running = summary.status == .running || summary.status == .receiving
        dryRun = summary.dryRun
        format = summary.format == .csv ? "CSV" : "NDJSON"
        rows = summary.rowsRead
        let percent = summary.rowsRead == 0 ? 100 : summary.rowsRecorded * 100 / summary.rowsRead
        recorded = summary.dryRun ? "checked only" : "\(summary.rowsRecorded) (\(percent) %)"
        granted = summary.counts[.granted] ?? 0
        pending = summary.counts[.pending] ?? 0
        superseded = summary.counts[.superseded] ?? 0
        suppressed = summary.counts[.suppressed] ?? 0
        duplicate = summary.counts[.duplicate] ?? 0
        invalid = summary.counts[.invalid] ?? 0
        sameFileAs = summary.sameFileAs?.lowercased
    }
}
