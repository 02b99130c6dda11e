import ConsentCore
import ConsentStore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Bulk imports of legacy opt-ins (consent:write): `POST /v1/imports` takes a CSV or NDJSON file, streamed, and
/// answers 202 once the whole file is in and kept (`running`; `validated` for a dry run); `GET /v1/imports/{id}`
/// answers its counts by outcome and progress; `GET /v1/imports/{id}/rejected` is the report of every row that
/// was not granted, as CSV, by line number and reason, never the identifier.
///
/// The upload is the one body this service does not buffer (`BodyBufferingMiddleware`) nor answer under the
/// request deadline: a file of up to 1 GiB takes longer than any deadline. Each piece of it must still arrive
/// within the deadline, or the connection is closed and nothing of the file is kept.
struct ImportRoutes {
    let imports: ImportStore
    let bodyReads: BodyReadWatch
    let readTimeout: Duration

    static let uploadPath = "/v1/imports"
    /// The bodies read as they stream rather than buffered: the API's upload and the console's form.
    static let streamedPaths: Set<String> = [uploadPath, "/console/imports"]

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/imports") { request, context in try await upload(request, context: context) }
        group.get("/imports") { _, context in try await list(context: context) }
        group.get("/imports/{id}") { _, context in try await show(context: context) }
        group.get("/imports/{id}/rejected") { _, context in try await rejected(context: context) }
    }

    struct ImportView: Encodable {
        let id: String
        let status: String
        let channel: String
        let noticeId: String
        let format: String
        let dryRun: Bool
        let sha256: String?
        let bytes: Int64
        let sameFileAs: String?
        let rows: Int
        let rowsRecorded: Int
        let counts: [String: Int]
        let createdAt: Date
        let receivedAt: Date?
        let completedAt: Date?
        let rejectedRowsUrl: String

        init(_ summary: ImportSummary) {
            id = summary.id.lowercased
            status = summary.status.rawValue
            channel = summary.channel.rawValue
            noticeId = summary.noticeId.lowercased
            format = summary.format.rawValue
            dryRun = summary.dryRun
            sha256 = summary.fileSHA256?.hexString
            bytes = summary.fileBytes
            sameFileAs = summary.sameFileAs?.lowercased
            rows = summary.rowsRead
            rowsRecorded = summary.rowsRecorded
            counts = Dictionary(uniqueKeysWithValues: summary.counts.map { ($0.key.rawValue, $0.value) })
            createdAt = summary.createdAt
            receivedAt = summary.receivedAt
            completedAt = summary.completedAt
            rejectedRowsUrl = "/v1/imports/\(summary.id.lowercased)/rejected"
        }
    }

    func upload(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let query = request.uri.queryParameters
        let channel = try Input.channel(query["channel"].map(String.init) ?? "")
        let noticeId = try Input.uuid(query["noticeId"].map(String.init) ?? "", field: "noticeId")
        let dryRun: Bool
        switch query["dryRun"].map(String.init) {
        case nil, "false": dryRun = false
        case "true": dryRun = true
        default: throw APIError.invalid("dryRun", "'dryRun' must be true or false")
        }
        guard let contentType = request.headers[.contentType], let format = ImportFormat(contentType: contentType)
        else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                message: "an import is sent as text/csv or application/x-ndjson")
        }
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > ImportParameters.maxFileBytes {
            throw Self.tooLarge
        }
        guard let keyId = caller.keyId else { throw APIError.forbidden(.consentWrite) }
        let body = WatchedBody(body: request.body, watch: bodyReads, channel: context.channel, timeout: readTimeout)
        do {
            let summary = try await imports.receive(
                body,
                parameters: ImportParameters(channel: channel, noticeId: noticeId, format: format, dryRun: dryRun),
                recordedBy: keyId, actor: caller.actor, tenantId: caller.tenantId, logger: context.logger)
            return try JSONResponse.encoding(
                ImportView(summary), status: .accepted,
                headers: [.location: "/v1/imports/\(summary.id.lowercased)"])
        } catch let refusal as ImportRefusal {
            switch refusal {
            case .noticeNotFound, .noticeForAnotherChannel: throw APIError.invalid("noticeId", refusal.description)
            case .malformed:
                throw APIError(
                    .unprocessableContent, code: "malformed_file", message: refusal.description, field: "body")
            case .tooLarge: throw Self.tooLarge
            }
        }
    }

    static let tooLarge = APIError(
        .contentTooLarge, code: "payload_too_large", message: ImportRefusal.tooLarge(limit: 0).description)

    func list(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let summaries = try await imports.list(tenantId: caller.tenantId, logger: context.logger)
        return try JSONResponse.encoding(["imports": summaries.map(ImportView.init)])
    }

    func show(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let id = try Input.uuid(context.parameters.get("id") ?? "", field: "id")
        guard let summary = try await imports.summary(id, tenantId: caller.tenantId, logger: context.logger) else {
            throw APIError.notFound("no import with this id")
        }
        return try JSONResponse.encoding(ImportView(summary))
    }

    /// `line,outcome,reason`, streamed a page at a time: a file of a million bad rows is a report of a million.
    func rejected(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let id = try Input.uuid(context.parameters.get("id") ?? "", field: "id")
        guard try await imports.summary(id, tenantId: caller.tenantId, logger: context.logger) != nil else {
            throw APIError.notFound("no import with this id")
        }
        return Self.rejectedReport(id, imports: imports, tenantId: caller.tenantId, logger: context.logger)
    }

    /// The report as the API and the console serve it.
    static func rejectedReport(_ id: UUID, imports: ImportStore, tenantId: UUID, logger: Logger) -> Response {
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "line,outcome,reason\r\n"))
            var after = 0
            while true {
                let page = try await imports.rejectedRows(
                    id, tenantId: tenantId, after: after, limit: 10_000, logger: logger)
                guard let last = page.last else { break }
                var text = ""
                for row in page {
                    text += "\(row.line),\(row.outcome.rawValue),\(Self.csvField(row.reason ?? ""))\r\n"
                }
                try await writer.write(ByteBuffer(string: text))
                after = last.line
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8",
                .contentDisposition: "attachment; filename=\"import-\(id.lowercased)-rejected.csv\"",
            ], body: body)
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// The upload's body, each piece of which must arrive within `timeout` (`BodyReadWatch` closes the connection of
/// one that does not).
struct WatchedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let body: RequestBody
    let watch: BodyReadWatch
    let channel: any Channel
    let timeout: Duration

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: RequestBody.AsyncIterator
        let watch: BodyReadWatch
        let channel: any Channel
        let timeout: Duration

        mutating func next() async throws -> ByteBuffer? {
            let id = watch.watch(channel, for: timeout)
            let piece = try await inner.next()
            if watch.end(id) { throw DeadlineExceeded(after: timeout) }
            return piece
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator(), watch: watch, channel: channel, timeout: timeout)
    }
}
