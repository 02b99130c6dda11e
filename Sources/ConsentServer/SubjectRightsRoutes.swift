import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The DPO's data-subject rights: export (Art. 15, 20), erasure (Art. 17), and the requests that track them with
/// their one-month due dates (Art. 12(3)). Personal data travels only in bodies; bundles are never stored for
/// idempotent replay (the replay table holds ids and times only), so completing a request is guarded by its
/// status instead.
struct SubjectRightsRoutes {
    let database: ConsentDatabase
    let desk: SubjectRightsDesk
    let exporter: SubjectExporter

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/subjects/export") { request, context in try await export(request, context: context) }
        group.post("/subjects/erase") { request, context in try await erase(request, context: context) }
        group.post("/requests") { request, context in try await createRequest(request, context: context) }
        group.get("/requests") { request, context in try await listRequests(request, context: context) }
        group.get("/requests/{id}") { _, context in try await getRequest(context: context) }
        group.post("/requests/{id}/complete") { _, context in try await completeRequest(context: context) }
        group.post("/requests/{id}/cancel") { _, context in try await cancelRequest(context: context) }
    }

    struct SubjectBody: Codable {
        let subject: String
        let channel: String
    }

    func subject(_ body: SubjectBody) throws -> SubjectIdentifier {
        try Input.subject(body.subject, channel: try Input.channel(body.channel))
    }

    // MARK: export and erasure

    func export(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let identifier = try subject(try await request.decodeJSON(SubjectBody.self, context: context))
        guard let export = try await exporter.export(identifier, tenantId: caller.tenantId, logger: context.logger)
        else {
            throw SubjectRightsError.subjectNotFound
        }
        return try ExportBundle(export).response()
    }

    struct EraseBody: Codable {
        let subject: String
        let channel: String
        /// The person objects to being messaged (Art. 21): keep them on the suppression list even if they never
        /// withdrew a consent.
        let objection: Bool?
    }

    func erase(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let (body, claim) = try await request.decodeWrite(
            EraseBody.self, operation: "POST /v1/subjects/erase", subjectFields: ["subject"], context: context)
        let identifier = try Input.subject(body.subject, channel: try Input.channel(body.channel))
        return try await erase(
            identifier, objection: body.objection ?? false, caller: caller,
            claim: claim?.naming([identifier], outlivingThem: true),
            logger: context.logger
        ).httpResponse
    }

    /// The erasure as the API and the console both carry it out: one idempotent unit of work.
    func erase(
        _ identifier: SubjectIdentifier, objection: Bool, caller: CallerIdentity, claim: IdempotencyClaim?,
        logger: Logger
    ) async throws -> WriteOutcome {
        try await database.commit(
            desk.erase(identifier, objection: objection, caller: caller), idempotency: claim, logger: logger,
            render: { try StoredResponse.json(.ok, ErasureView($0)) })
    }

    struct ErasureView: Encodable {
        let erased = true
        let erasedAt: Date
        let subjectFound: Bool
        let suppressed: Bool

        init(_ result: ErasureResult) {
            erasedAt = result.erasedAt
            subjectFound = result.subjectRef != nil
            suppressed = result.suppressed
        }
    }

    // MARK: requests

    struct RequestBody: Codable {
        let type: String
        let subject: String
        let channel: String
        /// When the request reached the controller, if earlier than now (a letter, an e-mail to the DPO).
        let receivedAt: Date?
    }

    func createRequest(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let (body, claim) = try await request.decodeWrite(
            RequestBody.self, operation: "POST /v1/requests", subjectFields: ["subject"], context: context)
        let type: SubjectRequestType = try Input.oneOf(body.type, field: "type")
        let identifier = try Input.subject(body.subject, channel: try Input.channel(body.channel))
        let receivedAt = Self.milliseconds(
            try body.receivedAt.map { try Input.pastTime($0, field: "receivedAt") } ?? Date())
        return try await database.commit(
            desk.openRequest(type, about: identifier, receivedAt: receivedAt, caller: caller),
            idempotency: claim?.naming([identifier]),
            logger: context.logger,
            render: { try StoredResponse.json(.created, RequestView($0, now: Date())) }
        ).httpResponse
    }

    func listRequests(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let status: SubjectRequestStatus? = try request.uri.queryParameters["status"].map {
            try Input.oneOf(String($0), field: "status")
        }
        let records = try await database.subjectRequests(caller.tenantId, status: status, logger: context.logger)
        let now = Date()
        return try JSONResponse.encoding(
            RequestList(requests: records.map { RequestView($0, now: now) }), headers: Self.noStore)
    }

    func getRequest(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let id = try Self.requestId(context)
        guard let record = try await database.subjectRequest(id, tenantId: caller.tenantId, logger: context.logger)
        else {
            throw SubjectRightsError.requestNotFound
        }
        return try JSONResponse.encoding(RequestView(record, now: Date()), headers: Self.noStore)
    }

    /// Carries the request out and closes it in one transaction (the store's `SubjectRightsDesk`): the export
    /// bundle for access and portability (nothing is held once the person is erased, and the answer says so), the
    /// erasure for erasure.
    func completeRequest(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let completed = try await complete(try Self.requestId(context), caller: caller, logger: context.logger)
        // Canonical as a whole because it may carry the export bundle (see `JSONResponse`).
        return try JSONResponse.canonical(try Self.completionJSON(completed), headers: Self.noStore)
    }

    func complete(_ id: UUID, caller: CallerIdentity, logger: Logger) async throws -> CompletedRequest {
        try await exporter.prepare(tenantId: caller.tenantId, logger: logger)
        return try await database.commit(desk.completeRequest(id, caller: caller), logger: logger)
    }

    /// `{"request", "outcome", "export"? | "erasure"?}`.
    static func completionJSON(_ completed: CompletedRequest) throws -> JSONValue {
        var body: [String: JSONValue] = [
            "request": try JSONValue(encoding: RequestView(completed.request, now: Date())),
            "outcome": .string(completed.fulfilment.outcome),
        ]
        switch completed.fulfilment {
        case .exported(let export): body["export"] = export.map(SubjectExportDocument.json) ?? .null
        case .erased(let result): body["erasure"] = try JSONValue(encoding: ErasureView(result))
        case .objected(let result):
            body["objection"] = try result.map { try JSONValue(encoding: ObjectionRoutes.ObjectionView($0)) } ?? .null
        }
        return .object(body)
    }

    func cancelRequest(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let closed = try await cancel(try Self.requestId(context), caller: caller, logger: context.logger)
        return try JSONResponse.encoding(["request": RequestView(closed, now: Date())], headers: Self.noStore)
    }

    func cancel(_ id: UUID, caller: CallerIdentity, logger: Logger) async throws -> SubjectRequestRecord {
        try await database.commit(desk.cancelRequest(id, caller: caller), logger: logger)
    }

    static func requestId(_ context: ConsentRequestContext) throws -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw SubjectRightsError.requestNotFound
        }
        return id
    }

    /// `completedAt`/`completedBy` or `cancelledAt`/`cancelledBy` once closed, by how it closed.
    struct RequestView: Encodable {
        let id: String
        let type: String
        let status: String
        let receivedAt: Date
        let dueAt: Date
        let overdue: Bool
        let subjectRef: String
        let completedAt: Date?
        let completedBy: String?
        let cancelledAt: Date?
        let cancelledBy: String?

        init(_ record: SubjectRequestRecord, now: Date) {
            id = record.id.lowercased
            type = record.type.rawValue
            status = record.status.rawValue
            receivedAt = record.receivedAt
            dueAt = record.dueAt
            overdue = record.isOverdue(at: now)
            subjectRef = record.subjectRef.lowercased
            let cancelled = record.status == .cancelled
            completedAt = cancelled ? nil : record.closedAt
            completedBy = cancelled ? nil : record.closedBy?.lowercased
            cancelledAt = cancelled ? record.closedAt : nil
            cancelledBy = cancelled ? record.closedBy?.lowercased : nil
        }
    }

    struct RequestList: Encodable {
        let requests: [RequestView]
    }

    static func milliseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded(.down) / 1000)
    }

    /// The requests' answers name the person only by reference, but a completion can carry their bundle: no
    /// cache keeps any of them.
    static let noStore: HTTPFields = [.cacheControl: "no-store"]
}

/// A subject's export bundle as the API answers it and the console downloads it: canonical JSON (its audit events
/// recompute their leaf hashes from the bundle alone, see `JSONResponse`) and never cached, as it holds personal data.
struct ExportBundle {
    let export: SubjectExport

    init(_ export: SubjectExport) { self.export = export }

    func response() throws -> Response {
        try JSONResponse.canonical(SubjectExportDocument.json(export), headers: SubjectRightsRoutes.noStore)
    }

    /// The console's download: the same bytes, saved as `filename`.
    func download(filename: String) throws -> Response {
        var response = try response()
        response.headers[.contentDisposition] = "attachment; filename=\"\(filename)\""
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }
}
