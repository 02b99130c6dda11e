import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/requests`: the data-subject requests queue, pending ones first by due date, and each request's page,
/// where the DPO completes (the API's `SubjectRightsRoutes.complete`) or cancels it.
extension ConsoleRoutes {
    func registerRequests(on router: Router<ConsentRequestContext>) {
        router.get("/console/requests") { request, context in try await requestList(request, context: context) }
        router.get("/console/requests/{id}") { request, context in try await requestPage(request, context: context) }
        router.post("/console/requests/{id}/complete") { request, context in
            try await complete(request, context: context)
        }
        router.post("/console/requests/{id}/cancel") { request, context in try await cancel(request, context: context) }
    }

    private static let noSuchRequest = Refusal(status: .notFound, reason: "No request has this id.", title: "Not found")

    private func requestList(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            let records = try await database.subjectRequests(
                session.caller.tenantId, status: nil, logger: context.logger)
            let now = Date()
            let ordered = records.sorted {
                ($0.status == .pending ? 0 : 1, $0.dueAt) < ($1.status == .pending ? 0 : 1, $1.dueAt)
            }
            return render(
                RequestQueueView(requests: ordered.map { RequestSummary($0, now: now) }), title: "Requests",
                session: session)
        }
    }

    private func requestId(_ context: ConsentRequestContext) -> UUID? {
        context.parameters.get("id").flatMap(UUID.init(uuidString:))
    }

    private func requestPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            guard let id = requestId(context),
                let record = try await database.subjectRequest(
                    id, tenantId: session.caller.tenantId, logger: context.logger)
            else { return render(Self.noSuchRequest, session: session) }
            let flash = request.uri.queryParameters.get("done").map { "The request was \($0)." }
            return render(
                RequestPageView(request: RequestSummary(record, now: Date())),
                title: "\(record.type.rawValue.capitalized) request",
                session: session, flash: flash)
        }
    }

    private func complete(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(CSRFOnlyForm.self, request, context: context) { session, _ in
            guard let id = requestId(context) else { return render(Self.noSuchRequest, session: session) }
            let completed: CompletedRequest
            do {
                completed = try await subjectRights.complete(id, caller: session.caller, logger: context.logger)
            } catch let error as SubjectRightsError {
                return render(Refusal(status: .conflict, reason: Self.describe(error)), session: session)
            }
            if case .exported(let export?) = completed.fulfilment {
                return try ExportBundle(export).download(filename: "request-\(id.lowercased)-export.json")
            }
            return Self.redirect("/console/requests/\(id.lowercased)?done=completed")
        }
    }

    private func cancel(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(CSRFOnlyForm.self, request, context: context) { session, _ in
            guard let id = requestId(context) else { return render(Self.noSuchRequest, session: session) }
            do {
                _ = try await subjectRights.cancel(id, caller: session.caller, logger: context.logger)
            } catch let error as SubjectRightsError {
                return render(Refusal(status: .conflict, reason: Self.describe(error)), session: session)
            }
            return Self.redirect("/console/requests/\(id.lowercased)?done=cancelled")
        }
    }

    private static func describe(_ error: SubjectRightsError) -> String {
        switch error {
        case .requestNotPending(let status): "The request is already \(status.rawValue)."
        case .requestNotFound: "No request has this id."
        default: "The request cannot be changed."
        }
    }
}

/// One request as the queue and its page show it.
struct RequestSummary: Sendable {
    let id: String
    let type: String
    let status: String
    let receivedAt: String
    let dueAt: String
    let overdue: Bool
    let subjectRef: String
    let closedAt: String?
    let pending: Bool
    let completeLabel: String
}

extension RequestSummary {
    init(_ record: SubjectRequestRecord, now: Date) {
        id = record.id.lowercased
        type = record.type.rawValue.capitalized
        status = record.status.rawValue
        receivedAt = ConsoleRoutes.time(record.receivedAt)
        dueAt = ConsoleRoutes.time(record.dueAt)
        overdue = record.isOverdue(at: now)
        subjectRef = record.subjectRef.lowercased
        closedAt = record.closedAt.map(ConsoleRoutes.time)
        pending = record.status == .pending
        completeLabel = record.type == .erasure ? "Carry out the erasure" : "Complete and download the export"
    }
}

struct RequestQueueView: ConsoleBody {
    static let template = PageTemplates.Name.consoleRequests
    static let section: ConsoleNav.Section? = .requests
    let requests: [RequestSummary]
}

struct RequestPageView: ConsoleBody {
    static let template = PageTemplates.Name.consoleRequest
    static let section: ConsoleNav.Section? = .requests
    let request: RequestSummary
}
