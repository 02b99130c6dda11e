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

    public init(
        reader: AuditLogReader, tenantId: UUID, tenantName: String, checkpoint: StoredCheckpoint, verifierKey: String,
        from: Date?, to: Date?
    ) {
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
        var head = checkpoint.note.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
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
                chunk += "\(record.subjectRef?.lowercased ?? ""),\(Self.csv(data)),\(Data(event.leafHash).base64EncodedString())\n"
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
            for event in page { chunk += try CanonicalJSON.string(event.record.apiJSON(leafHash: event.leafHash)) + "\n" }
            try await sink(chunk)
        }
    }

    func writeHTML(logger: Logger, to sink: (String) async throws -> Void) async throws {
        let counts = try await reader.counts(tenantId: tenantId, filter: filter, logger: logger)
        let period = "\(from.map(RFC3339.format) ?? "the first event") to \(to.map(RFC3339.format) ?? "checkpoint \(checkpoint.size)")"
        let total = counts.byAction.reduce(0) { $0 + $1.count }
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Audit report: \(Self.escape(tenantName))</title>
            <style>
            body{font:14px/1.5 system-ui,sans-serif;color:#1b1f24;max-width:60rem;margin:2rem auto;padding:0 1rem}
            h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
            table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
            th{background:#f6f8fa}td.n{text-align:right}pre,code{font:12px/1.4 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
            @media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}
            </style></head><body>
            <h1>Audit report: \(Self.escape(tenantName))</h1>
            <p>Period: \(Self.escape(period)). Events in this report: \(total).
            Report written \(Self.escape(RFC3339.format(Date()))).</p>
            <h2>Checkpoint</h2>
            <p>The events below are those of the log of <code>\(Self.escape(checkpoint.origin))</code> up to tree size
            \(checkpoint.size), whose root hash is signed by this checkpoint (issued \(Self.escape(RFC3339.format(checkpoint.issuedAt)))):</p>
            <pre>\(Self.escape(checkpoint.note))</pre>
            <p>Verifier key: <code>\(Self.escape(verifierKey))</code></p>
            <h2>Events by action</h2>
            <table><thead><tr><th scope="col">Action</th><th scope="col">Events</th></tr></thead><tbody>

            """
        for count in counts.byAction { html += "<tr><td>\(Self.escape(count.key))</td><td class=\"n\">\(count.count)</td></tr>\n" }
        html += """
            </tbody></table>
            <h2>Events by purpose</h2>
            <table><thead><tr><th scope="col">Purpose</th><th scope="col">Events</th></tr></thead><tbody>

            """
        for count in counts.byPurpose { html += "<tr><td>\(Self.escape(count.key))</td><td class=\"n\">\(count.count)</td></tr>\n" }
        html += """
            </tbody></table>
            <h2>How to verify</h2>
            <ol>
            <li>Check the checkpoint's signature with the verifier key above (any C2SP signed-note verifier, e.g. Go's
            <code>golang.org/x/mod/sumdb/note</code>), after confirming the key with the operator.</li>
            <li>For each event, its leaf hash is SHA-256 of the byte 0x00 followed by the RFC 8785 canonical JSON of
            <code>{"seq","at","action","actor","subjectRef","data"}</code> (without <code>subjectRef</code> when empty).</li>
            <li>Ask the service for an inclusion proof (<code>GET /v1/audit/proofs/inclusion?seq=…&amp;treeSize=\(checkpoint.size)</code>)
            and check it against the root above as RFC 9162 section 2.1.3.2 describes; check a later checkpoint with
            <code>GET /v1/audit/proofs/consistency</code> (section 2.1.4.2).</li>
            <li>The operator can run <code>consentd audit verify --tenant \(Self.escape(tenantName))</code>, which recomputes
            the whole log from the stored events.</li>
            </ol>
            <h2>Events</h2>
            <table><thead><tr><th scope="col">seq</th><th scope="col">Time (UTC)</th><th scope="col">Action</th>
            <th scope="col">Actor</th><th scope="col">Subject reference</th><th scope="col">Details</th><th scope="col">Leaf hash</th></tr></thead><tbody>

            """
        try await sink(html)
        try await reader.forEachPage(tenantId: tenantId, filter: filter, logger: logger) { page in
            var chunk = ""
            for event in page {
                let record = event.record
                chunk += "<tr><td class=\"n\">\(record.seq)</td><td>\(Self.escape(record.at))</td><td>\(Self.escape(record.action))</td>"
                chunk += "<td>\(Self.escape(record.actor))</td><td><code>\(record.subjectRef?.lowercased ?? "")</code></td>"
                chunk += "<td><code>\(Self.escape(try CanonicalJSON.string(.object(record.data))))</code></td>"
                chunk += "<td><code>\(Data(event.leafHash).base64EncodedString())</code></td></tr>\n"
            }
            try await sink(chunk)
        }
        try await sink("</tbody></table>\n</body></html>\n")
    }

    static func csv(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func escape(_ text: String) -> String { HTMLPage.escape(text) }
}
