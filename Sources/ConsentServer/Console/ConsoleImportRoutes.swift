import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/imports`: the tenant's imports with their progress and outcome counts, and each one's report of the
/// rows that were not granted (the same CSV as `GET /v1/imports/{id}/rejected`). Files are sent by the API or
/// `consentd import`: the console takes no upload (it is not done yet; the note says so).
extension ConsoleRoutes {
    func registerImports(on router: Router<ConsentRequestContext>) {
        router.get("/console/imports") { request, context in try await importsPage(request, context: context) }
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
            let all = try await imports.list(tenantId: session.caller.tenantId, logger: context.logger)
            return render(ImportsView(imports: all.map(ImportsView.Row.init)), title: "Imports", session: session)
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

    let imports: [Row]
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
