import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console`: active consents, the weekly chart, requests falling due, and the audit log's latest checkpoint and
/// verification. The figures are `ConsentReports`', the same as `GET /v1/reports/consents`.
extension ConsoleRoutes {
    func registerOverview(on router: Router<ConsentRequestContext>) {
        router.get("/console") { request, context in try await overview(request, context: context) }
    }

    private func overview(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            let tenantId = session.caller.tenantId
            let now = Date()
            let reports = database.reports
            let rows = try await reports.consents(
                tenantId: tenantId, from: now.addingTimeInterval(-84 * 86_400), to: now, logger: context.logger)
            let weeks = try await reports.weekly(tenantId: tenantId, weeks: 12, now: now, logger: context.logger)
            let pending = try await database.subjectRequests(tenantId, status: .pending, logger: context.logger)
            let due = pending.filter { $0.dueAt <= now.addingTimeInterval(7 * 86_400) }.sorted { $0.dueAt < $1.dueAt }
            try await audit.sequencer.catchUp(tenantId: tenantId, logger: context.logger)
            let checkpoint = try await audit.reader.latestCheckpoint(tenantId: tenantId, logger: context.logger)
            let verifications = try await database.auditVerifications.latest(tenantId: tenantId, logger: context.logger)
            let failure = verifications.last.flatMap { $0.ok ? nil : $0 }
            let view = OverviewView(
                anyActive: !rows.isEmpty,
                rows: rows.map {
                    OverviewView.Row(
                        purpose: $0.purpose, channel: $0.channel, active: $0.active, granted: $0.granted,
                        withdrawn: $0.withdrawn)
                },
                chart: WeeklyChart(weeks),
                weeks: weeks.map {
                    OverviewView.Week(
                        week: RFC3339Day.format($0.weekStart), granted: $0.granted, withdrawn: $0.withdrawn)
                },
                anyDue: !due.isEmpty,
                due: due.map {
                    OverviewView.Due(
                        id: $0.id.lowercased, type: $0.type.rawValue.capitalized, dueAt: Self.time($0.dueAt),
                        overdue: $0.isOverdue(at: now))
                },
                checkpoint: checkpoint.map { OverviewView.Checkpoint(size: $0.size, issuedAt: Self.time($0.issuedAt)) },
                verified: verifications.lastSuccess.map {
                    OverviewView.Verified(verifiedAt: Self.time($0.verifiedAt), treeSize: $0.treeSize)
                },
                lastFailure: failure.map {
                    OverviewView.Failure(verifiedAt: Self.time($0.verifiedAt), problem: $0.problem ?? "unknown")
                })
            // An endpoint the deliverer disabled holds every later change from a system that relies on it: the DPO
            // hears of it on the first page, not only on the webhooks page.
            let disabled = try await webhooks.list(tenantId: tenantId, logger: context.logger)
                .filter { $0.status == .disabled }.count
            return render(
                view, title: "Overview", session: session,
                problem: disabled == 0
                    ? nil
                    : "\(disabled) webhook endpoint(s) disabled after repeated failure; their changes are held "
                        + "(see Webhooks).")
        }
    }
}

struct OverviewView: ConsoleBody {
    static let template = PageTemplates.Name.consoleOverview
    static let section: ConsoleNav.Section? = .overview

    struct Row: Sendable {
        let purpose: String
        let channel: String
        let active: Int
        let granted: Int
        let withdrawn: Int
    }

    struct Week: Sendable {
        let week: String
        let granted: Int
        let withdrawn: Int
    }

    struct Due: Sendable {
        let id: String
        let type: String
        let dueAt: String
        let overdue: Bool
    }

    struct Checkpoint: Sendable {
        let size: Int64
        let issuedAt: String
    }

    struct Verified: Sendable {
        let verifiedAt: String
        let treeSize: Int64
    }

    struct Failure: Sendable {
        let verifiedAt: String
        let problem: String
    }

    let anyActive: Bool
    let rows: [Row]
    let chart: WeeklyChart
    let weeks: [Week]
    let anyDue: Bool
    let due: [Due]
    let checkpoint: Checkpoint?
    let verified: Verified?
    let lastFailure: Failure?
}
