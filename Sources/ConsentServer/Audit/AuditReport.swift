import ConsentCore
import ConsentStore
import Foundation
import Logging

/// The formats an audit report is written in.
public enum AuditReportFormat: String, Sendable, CaseIterable {
    case csv
    case ndjson
    case html

    public var contentType: String {
        switch self {
        case .csv: "text/csv; charset=utf-8"
        case .ndjson: "application/x-ndjson"
        case .html: "text/html; charset=utf-8"
        }
    }
}

/// A report of a tenant's audit events, taken against one checkpoint: only events that checkpoint covers are
/// listed, and the report states the checkpoint so a reader can verify the events against it. Written a page
/// at a time, so memory stays constant however many events there are.
public struct AuditReport: Sendable {
    let reader: AuditLogReader
    let tenantId: UUID
    let tenantName: String
    let checkpoint: StoredCheckpoint
    let verifierKey: String
    let from: Date?
    let to: Date?
    /// The server's templates; `consentd audit export` passes none and the HTML report loads them when it starts.
    let templates: PageTemplates?

    public init(
        reader: AuditLogReader, tenantId: UUID, tenantName: String, checkpoint: StoredCheckpoint, verifierKey: String,
        from: Date?, to: Date?
    ) {
        self.init(
            reader: reader, tenantId: tenantId, tenantName: tenantName, checkpoint: checkpoint,
            verifierKey: verifierKey,
            from: from, to: to, templates: nil)
    }

    init(
        reader: AuditLogReader, tenantId: UUID, tenantName: String, checkpoint: StoredCheckpoint, verifierKey: String,
        from: Date?, to: Date?, templates: PageTemplates?
    ) {
        self.templates = templates
        self.reader = reader
        self.tenantId = tenantId
        self.tenantName = tenantName
        self.checkpoint = checkpoint
        self.verifierKey = verifierKey
        self.from = from
        self.to = to
    }

    var filter: AuditEventFilter { AuditEventFilter(below: checkpoint.size, from: from, to: to) }

    public func write(
        _ format: AuditReportFormat, logger: Logger, to sink: (String) async throws -> Void
    ) async throws {
        switch format {
        case .csv: try await writeCSV(logger: logger, to: sink)
        case .ndjson: try await writeNDJSON(logger: logger, to: sink)
        case .html: try await writeHTML(logger: logger, to: sink)
        }
    }

    func writeCSV(logger: Logger, to sink: (String) async throws -> Void) async throws {
        // Comment lines (read with e.g. pandas' comment='#') carry the checkpoint the rows were taken against.
        var head =
            checkpoint.note.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map { "# " + $0 }.joined(separator: "\n") + "\n"
        head += "# verifier key: \(verifierKey)\n"
        head += "seq,at,action,actor,subject_ref,data,leaf_hash\n"
        try await sink(head)
        try await reader.forEachPage(tenantId: tenantId, filter: filter, logger: logger) { page in
            var chunk = ""
            for event in page {
                let record = event.record
                let data = try CanonicalJSON.string(.object(record.data))
                chunk += "\(record.seq),\(record.at),\(Self.csv(record.action)),\(Self.csv(record.actor)),"
                chunk +=
                    "\(record.subjectRef?.lowercased ?? ""),\(Self.csv(data)),\(Data(event.leafHash).base64EncodedString())\n"
            }
            try await sink(chunk)
        }
    }

    func writeNDJSON(logger: Logger, to sink: (String) async throws -> Void) async throws {
        var head: [String: JSONValue] = [
            "checkpoint": .object([
                "origin": .string(checkpoint.origin), "treeSize": .number(Double(checkpoint.size)),
                "rootHash": .string(Data(checkpoint.rootHash).base64EncodedString()), "note": .string(checkpoint.note),
                "verifierKey": .string(verifierKey),
            ])
        ]
        if let from { head["from"] = .string(RFC3339.format(from)) }
        if let to { head["to"] = .string(RFC3339.format(to)) }
        try await sink(try CanonicalJSON.string(.object(head)) + "\n")
        try await reader.forEachPage(tenantId: tenantId, filter: filter, logger: logger) { page in
            var chunk = ""
            for event in page {
                chunk += try CanonicalJSON.string(event.record.apiJSON(leafHash: event.leafHash)) + "\n"
            }
            try await sink(chunk)
        }
    }

    /// A printable page: `report/head` with the checkpoint and the counts, `report/row` per event as the pages
    /// arrive, `report/foot`.
    func writeHTML(logger: Logger, to sink: (String) async throws -> Void) async throws {
        let templates: PageTemplates
        if let given = self.templates { templates = given } else { templates = try await PageTemplates.load() }
        let counts = try await reader.counts(tenantId: tenantId, filter: filter, logger: logger)
        try await sink(
            templates.render(
                HTMLReportHead(
                    tenantName: tenantName,
                    period:
                        "\(from.map(RFC3339.format) ?? "the first event") to \(to.map(RFC3339.format) ?? "checkpoint \(checkpoint.size)")",
                    total: counts.byAction.reduce(0) { $0 + $1.count }, writtenAt: RFC3339.format(Date()),
                    origin: checkpoint.origin,
                    treeSize: checkpoint.size, issuedAt: RFC3339.format(checkpoint.issuedAt), note: checkpoint.note,
                    verifierKey: verifierKey, byAction: counts.byAction, byPurpose: counts.byPurpose)))
        try await reader.forEachPage(tenantId: tenantId, filter: filter, logger: logger) { page in
            var chunk = ""
            for event in page {
                let record = event.record
                chunk += templates.render(
                    HTMLReportRow(
                        seq: record.seq, at: record.at, action: record.action, actor: record.actor,
                        subjectRef: record.subjectRef?.lowercased ?? "",
                        data: try CanonicalJSON.string(.object(record.data)),
                        leafHash: Data(event.leafHash).base64EncodedString()))
            }
            try await sink(chunk)
        }
        try await sink(templates.render(HTMLReportFoot()))
    }

    static func csv(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

}

struct HTMLReportHead: PageView {
    static let template = PageTemplates.Name.reportHead
    let tenantName: String
    let period: String
    let total: Int64
    let writtenAt: String
    let origin: String
    let treeSize: Int64
    let issuedAt: String
    let note: String
    let verifierKey: String
    let byAction: [AuditLogReader.Count]
    let byPurpose: [AuditLogReader.Count]
}

struct HTMLReportRow: PageView {
    static let template = PageTemplates.Name.reportRow
    let seq: Int64
    let at: String
    let action: String
    let actor: String
    let subjectRef: String
    /// The event's data as canonical JSON, the form its leaf hash covers.
    let data: String
    let leafHash: String
}

struct HTMLReportFoot: PageView {
    static let template = PageTemplates.Name.reportFoot
}
