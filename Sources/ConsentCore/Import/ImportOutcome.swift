import Crypto
import Foundation

/// What became of one row of an import.
public enum ImportOutcome: String, Sendable, Codable, CaseIterable {
    /// At least one purpose granted.
    case granted
    /// Recorded pending a confirmation, and nothing granted. An import records every row as an `import` (granted
    /// unless a stop or an objection says otherwise), so none is pending today; the outcome stays for the API.
    case pending
    /// Every purpose recorded was older than the person's stop for it: kept as history, not granted.
    case superseded
    /// On the suppression list (the person objected, or withdrew and was erased) for every purpose: nothing recorded.
    case suppressed
    /// The same row (person, notice, method, time and purposes) was imported before: nothing changed.
    case duplicate
    /// A value failed its check (the report says which); nothing recorded.
    case invalid

    /// A row's outcome from its purposes' statuses: the most a row achieved decides it.
    public static func of(_ statuses: [ImportPurposeStatus]) -> ImportOutcome {
        if statuses.contains(.granted) { return .granted }
        if statuses.contains(.pending) { return .pending }
        if statuses.contains(.superseded) { return .superseded }
        return .suppressed
    }
}

/// What an opt-in recorded for one purpose of a row.
public enum ImportPurposeStatus: Sendable, Equatable {
    case granted, pending, superseded, suppressed
}

/// The key that makes importing a row twice change nothing the second time: a hash of the subject's id (never
/// the identifier), the notice, the method, the collection time to the microsecond and the purposes in key order.
/// A file imported again, or a row shared by two files, has the same key for the same person.
public enum ImportRowKey {
    public static func compute(
        subjectId: UUID, noticeId: UUID, method: CollectionMethod, collectedAt: Date, purposes: [String]
    ) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array("consentledger-import-row-v1\n".utf8))
        for id in [subjectId, noticeId] { withUnsafeBytes(of: id.uuid) { hasher.update(bufferPointer: $0) } }
        let micros = Int64((collectedAt.timeIntervalSince1970 * 1_000_000).rounded())
        let text = "\n\(method.rawValue)\n\(micros)\n\(purposes.sorted().joined(separator: ","))"
        hasher.update(data: Array(text.utf8))
        return Array(hasher.finalize())
    }
}

/// One row as the import's batch event commits to it: the leaf of the batch's Merkle tree (RFC 6962 hashing,
/// as the audit log's). It names the row by line, its outcome, and for a row about a person the subject's id
/// and the row key; never the identifier. An export bundle carries the leaf and its inclusion proof, so anyone
/// can check that the row was in the batch whose root the audit log holds.
public struct ImportLeaf: Sendable, Equatable {
    public let importId: UUID
    public let line: Int
    public let outcome: ImportOutcome
    public let subjectRef: UUID?
    public let rowKey: [UInt8]?

    public init(importId: UUID, line: Int, outcome: ImportOutcome, subjectRef: UUID?, rowKey: [UInt8]?) {
        self.importId = importId
        self.line = line
        self.outcome = outcome
        self.subjectRef = subjectRef
        self.rowKey = rowKey
    }

    /// The leaf's canonical JSON (RFC 8785).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "importId": .string(importId.lowercased), "line": .number(Double(line)),
            "outcome": .string(outcome.rawValue),
        ]
        if let subjectRef { fields["subjectRef"] = .string(subjectRef.lowercased) }
        if let rowKey { fields["rowKey"] = .string(rowKey.hexString) }
        return .object(fields)
    }

    /// `json` serialised (RFC 8785), written directly: every value is ASCII that needs no escaping and the keys
    /// are already in order, and the general serialiser took a tenth of an import's time in Swift. A test keeps
    /// the two byte for byte equal.
    public var canonicalBytes: [UInt8] {
        var text =
            #"{"importId":""# + importId.lowercased + #"","line":"# + String(line) + #","outcome":""#
            + outcome.rawValue + "\""
        if let rowKey { text += #","rowKey":""# + rowKey.hexString + "\"" }
        if let subjectRef { text += #","subjectRef":""# + subjectRef.lowercased + "\"" }
        return Array((text + "}").utf8)
    }

    public func hash() -> [UInt8] { MerkleTree.leafHash(canonicalBytes) }

    /// The root over a batch's leaf hashes, in line order.
    public static func root(_ leafHashes: [[UInt8]]) -> [UInt8] { MerkleTree.root(leafHashes[...]) }

    /// The inclusion proof (RFC 9162, 2.1.3.1) of the leaf at `index` among a batch's leaf hashes.
    public static func proof(index: Int, in leafHashes: [[UInt8]]) -> [[UInt8]] {
        MerkleTree.inclusionProofRanges(index: Int64(index), size: Int64(leafHashes.count)).map {
            MerkleTree.root(leafHashes[Int($0.lowerBound)..<Int($0.upperBound)])
        }
    }
}
