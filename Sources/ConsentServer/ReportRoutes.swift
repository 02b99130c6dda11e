import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `GET /v1/reports/consents?from=&to=` (dpo): per purpose and channel, opt-ins granted and withdrawals in the
/// period and consents active at its end. The console's overview shows the same figures.
struct ReportRoutes {
    let reports: ConsentReports

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/reports/consents") { request, context in try await consents(request, context: context) }
    }

    struct Report: Encodable {
        let from: Date
        let to: Date
        let rows: [ConsentReportRow]
    }

    /// `to` defaults to now and `from` to 30 days before `to`.
    static func period(_ request: Request, now: Date = Date()) throws -> (from: Date, to: Date) {
        let query = request.uri.queryParameters
        let to = try Query.time(query, "to") ?? now
        let from = try Query.time(query, "from") ?? to.addingTimeInterval(-30 * 86_400)
        guard from < to else { throw APIError.invalid("from", "'from' must be earlier than 'to'") }
        return (from, to)
    }

    func consents(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let (from, to) = try Self.period(request)
        let rows = try await reports.consents(tenantId: caller.tenantId, from: from, to: to, logger: context.logger)
        return try JSONResponse.encoding(Report(from: from, to: to, rows: rows))
    }
}
