import Foundation

/// An event as the log holds it and the API returns it: `{"seq", "at", "action", "actor", "subjectRef"?, "data"}`.
/// Its leaf is the RFC 8785 form of exactly these fields, so anyone holding the API's answer can recompute it.
public struct AuditRecord: Sendable, Equatable {
    public let seq: Int64
    /// RFC 3339 UTC with milliseconds, as stored: the text is hashed, so it is kept as text.
    public let at: String
    public let action: String
    public let actor: String
    public let subjectRef: UUID?
    public let data: [String: JSONValue]

    public init(seq: Int64, at: String, action: String, actor: String, subjectRef: UUID?, data: [String: JSONValue]) {
        self.seq = seq
        self.at = at
        self.action = action
        self.actor = actor
        self.subjectRef = subjectRef
        self.data = data
    }

    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "seq": .number(Double(seq)), "at": .string(at), "action": .string(action), "actor": .string(actor),
            "data": .object(data),
        ]
        if let subjectRef { members["subjectRef"] = .string(subjectRef.lowercased) }
        return .object(members)
    }

    public func canonicalJSON() throws -> [UInt8] { try CanonicalJSON.serialize(json) }

    public func leafHash() throws -> [UInt8] { MerkleTree.leafHash(try canonicalJSON()) }

    /// The API's object: the leaf's fields plus `leafHash` (base64).
    public func apiJSON(leafHash: [UInt8]) -> JSONValue {
        guard case .object(var members) = json else { return json }
        members["leafHash"] = .string(Data(leafHash).base64EncodedString())
        return .object(members)
    }
}
