import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The DPO's view of the tenant's tamper-evident log: events (JSON pages, or CSV / NDJSON / HTML reports),
/// the latest signed checkpoint, the key that signs it, RFC 9162 proofs, and a full verification.
///
/// Reads first sequence whatever the tenant has committed but the sequencer has not reached yet, so an answer
/// covers every event committed before the request.
struct AuditRoutes {
    let reader: AuditLogReader
    let sequencer: AuditSequencer
    let signer: CheckpointSigner
    let verifier: AuditVerifier
    let verifications: AuditVerifications
    let templates: PageTemplates

    static let defaultPage = 100
    static let maxPage = 1000

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/audit/events") { request, context in try await events(request, context: context) }
        group.get("/audit/checkpoint") { _, context in try await checkpoint(context: context) }
        group.get("/audit/key") { _, context in try await key(context: context) }
        group.get("/audit/proofs/inclusion") { request, context in try await inclusion(request, context: context) }
        group.get("/audit/proofs/consistency") { request, context in try await consistency(request, context: context) }
        group.get("/audit/verification") { _, context in try await verification(context: context) }
    }

    func sequenced(_ caller: CallerIdentity, context: ConsentRequestContext) async throws -> StoredCheckpoint {
        try await sequencer.catchUp(tenantId: caller.tenantId, logger: context.logger)
        guard let checkpoint = try await reader.latestCheckpoint(tenantId: caller.tenantId, logger: context.logger)
        else {
            // Every tenant's creation is an event, so a tenant always has a checkpoint once sequenced.
            throw APIError(.serviceUnavailable, code: "no_checkpoint", message: "the audit log has no checkpoint yet")
        }
        return checkpoint
    }

    func events(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let query = request.uri.queryParameters
        let from = try Query.time(query, "from")
        let to = try Query.time(query, "to")
        let checkpoint = try await sequenced(caller, context: context)
        if let format = Self.reportFormat(request.headers[.accept]) {
            return try await report(
                format, from: from, to: to, checkpoint: checkpoint, caller: caller, logger: context.logger)
        }
        let after = try Query.integer(query, "after", minimum: 0)
        let limit =
            try Query.integer(query, "limit", minimum: 1, maximum: Int64(Self.maxPage)).map(Int.init)
            ?? Self.defaultPage
        let page = try await reader.events(
            tenantId: caller.tenantId,
            filter: AuditEventFilter(after: after, below: checkpoint.size, from: from, to: to),
            limit: limit, logger: context.logger)
        var body: [String: JSONValue] = ["events": .array(page.map { $0.record.apiJSON(leafHash: $0.leafHash) })]
        if page.count == limit, let last = page.last { body["next"] = .number(Double(last.record.seq)) }
        // Canonical, so each event object is byte for byte what its leaf hashes (less `leafHash`).
        return try JSONResponse.canonical(.object(body))
    }

    /// A report of the events in [from, to) under `checkpoint`, streamed; the console downloads the same.
    func report(
        _ format: AuditReportFormat, from: Date?, to: Date?, checkpoint: StoredCheckpoint, caller: CallerIdentity,
        logger: Logger, headers extra: HTTPFields = [:]
    ) async throws -> Response {
        let name = try await reader.tenantName(tenantId: caller.tenantId, logger: logger)
        let report = AuditReport(
            reader: reader, tenantId: caller.tenantId, tenantName: name, checkpoint: checkpoint,
            verifierKey: try signer.signer(for: name).verifier.verifierKey, from: from, to: to, templates: templates)
        var headers: HTTPFields = [.contentType: format.contentType]
        headers[.auditTreeSize] = String(checkpoint.size)
        headers[.auditRootHash] = Data(checkpoint.rootHash).base64EncodedString()
        headers.append(contentsOf: extra)
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                try await report.write(format, logger: logger) { chunk in
                    try await writer.write(ByteBuffer(string: chunk))
                }
                try await writer.finish(nil)
            })
    }

    /// Runs the full verification (`AuditVerifier`) and records its outcome for the console's overview.
    func verify(caller: CallerIdentity, logger: Logger) async throws -> AuditVerification {
        try await sequencer.catchUp(tenantId: caller.tenantId, logger: logger)
        let name = try await reader.tenantName(tenantId: caller.tenantId, logger: logger)
        let result = try await verifier.verify(tenantId: caller.tenantId, tenantName: name, logger: logger)
        try await verifications.record(
            ok: result.ok, treeSize: result.treeSize, problem: result.problem, caller: caller, logger: logger)
        return result
    }

    func checkpoint(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let checkpoint = try await sequenced(caller, context: context)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: checkpoint.note)))
    }

    func key(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let name = try await reader.tenantName(tenantId: caller.tenantId, logger: context.logger)
        let noteSigner = try signer.signer(for: name)
        return try JSONResponse.encoding(
            KeyView(
                origin: noteSigner.name, publicKey: Data(noteSigner.publicKey).base64EncodedString(),
                verifierKey: noteSigner.verifier.verifierKey))
    }

    func inclusion(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let query = request.uri.queryParameters
        guard let seq = try Query.integer(query, "seq", minimum: 0) else {
            throw APIError.invalid("seq", "'seq' is required")
        }
        guard let size = try Query.integer(query, "treeSize", minimum: 1) else {
            throw APIError.invalid("treeSize", "'treeSize' is required")
        }
        guard seq < size else { throw APIError.invalid("seq", "'seq' must be less than 'treeSize'") }
        let hashes = try await proof(field: "treeSize") {
            try await reader.inclusionProof(tenantId: caller.tenantId, seq: seq, treeSize: size, logger: context.logger)
        }
        return try JSONResponse.encoding(InclusionView(seq: seq, treeSize: size, hashes: Self.base64(hashes)))
    }

    func consistency(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let query = request.uri.queryParameters
        guard let from = try Query.integer(query, "from", minimum: 1) else {
            throw APIError.invalid("from", "'from' is required")
        }
        guard let to = try Query.integer(query, "to", minimum: 1) else {
            throw APIError.invalid("to", "'to' is required")
        }
        guard from <= to else { throw APIError.invalid("from", "'from' must not exceed 'to'") }
        let hashes = try await proof(field: "to") {
            try await reader.consistencyProof(tenantId: caller.tenantId, from: from, to: to, logger: context.logger)
        }
        return try JSONResponse.encoding(ConsistencyView(from: from, to: to, hashes: Self.base64(hashes)))
    }

    func proof(field: String, _ body: () async throws -> [[UInt8]]) async throws -> [[UInt8]] {
        do {
            return try await body()
        } catch AuditProofError.beyondTree(let size) {
            throw APIError.invalid(field, "'\(field)' exceeds the log's size, which is \(size)")
        } catch AuditProofError.invalidRange(let message) {
            throw APIError.invalid(field, message)
        }
    }

    func verification(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        _ = try await sequenced(caller, context: context)
        let result = try await verify(caller: caller, logger: context.logger)
        return try JSONResponse.encoding(
            VerificationView(
                ok: result.ok, treeSize: result.treeSize, eventsChecked: result.eventsChecked,
                checkpointsChecked: result.checkpointsChecked, unsequencedEvents: result.unsequencedEvents,
                verifiedAt: Date(), latestCheckpointSize: result.latestCheckpointSize, firstBadSeq: result.firstBadSeq,
                problem: result.problem))
    }

    /// A report format when the client asks for one by `Accept`; JSON pages otherwise.
    static func reportFormat(_ accept: String?) -> AuditReportFormat? {
        guard let accept = accept?.lowercased() else { return nil }
        if accept.contains("text/csv") { return .csv }
        if accept.contains("application/x-ndjson") { return .ndjson }
        if accept.contains("text/html") { return .html }
        return nil
    }

    static func base64(_ hashes: [[UInt8]]) -> [String] {
        hashes.map { Data($0).base64EncodedString() }
    }

    struct KeyView: Encodable {
        let origin: String
        let publicKey: String
        let verifierKey: String
    }

    struct InclusionView: Encodable {
        let seq: Int64
        let treeSize: Int64
        let hashes: [String]
    }

    struct ConsistencyView: Encodable {
        let from: Int64
        let to: Int64
        let hashes: [String]
    }

    /// Optional fields are left out when absent (the synthesised `encode` uses `encodeIfPresent`).
    struct VerificationView: Encodable {
        let ok: Bool
        let treeSize: Int64
        let eventsChecked: Int64
        let checkpointsChecked: Int64
        let unsequencedEvents: Int64
        let verifiedAt: Date
        let latestCheckpointSize: Int64?
        let firstBadSeq: Int64?
        let problem: String?
    }
}

extension HTTPField.Name {
    static let auditTreeSize = HTTPField.Name("Audit-Tree-Size")!
    static let auditRootHash = HTTPField.Name("Audit-Root-Hash")!
}

/// Query-string parameters, refused with the contract's 422 when malformed.
enum Query {
    static func integer(
        _ query: Parameters, _ name: String, minimum: Int64, maximum: Int64 = Int64.max
    ) throws(APIError) -> Int64? {
        guard let text = query[name[...]].map(String.init) else { return nil }
        guard let value = Int64(text), value >= minimum, value <= maximum else {
            let upper = maximum == Int64.max ? "" : " and at most \(maximum)"
            throw .invalid(name, "'\(name)' must be an integer of at least \(minimum)\(upper)")
        }
        return value
    }

    static func time(_ query: Parameters, _ name: String) throws(APIError) -> Date? {
        guard let text = query[name[...]].map(String.init) else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw .invalid(name, "'\(name)' must be an RFC 3339 time such as 2026-01-31T09:30:00Z")
        }
        return date
    }
}
