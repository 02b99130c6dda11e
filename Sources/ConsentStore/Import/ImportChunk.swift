import ConsentCore
import Crypto
import Foundation

/// A chunk of an import as it waits to be recorded: the rows that passed their checks and the rejections, in line
/// order, sealed under the import's own key (the identifiers in it are personal data).
struct ImportChunk: Sendable, Codable, Equatable {
    var rows: [ImportRow] = []
    var rejections: [ImportRejection] = []

    /// How many lines a chunk holds: one transaction, one audit event, one Merkle root.
    static let lines = 5_000

    var count: Int { rows.count + rejections.count }
    var firstLine: Int { min(rows.first?.line ?? .max, rejections.first?.line ?? .max) }
    var lastLine: Int { max(rows.last?.line ?? 0, rejections.last?.line ?? 0) }

    func sealed(with key: SymmetricKey, importId: UUID, seq: Int) throws -> [UInt8] {
        FieldCipher.seal(try JSONEncoder().encode(self), key: key, context: Self.context(importId, seq))
    }

    static func open(_ sealed: [UInt8], key: SymmetricKey, importId: UUID, seq: Int) throws -> ImportChunk {
        try JSONDecoder().decode(
            ImportChunk.self, from: Data(try FieldCipher.open(sealed, key: key, context: context(importId, seq))))
    }

    private static func context(_ importId: UUID, _ seq: Int) -> String { "import-chunk:\(importId.lowercased):\(seq)" }
}

extension TenantKeyring {
    func newImportKey(importId: UUID) -> (key: SymmetricKey, wrapped: [UInt8], masterKeyId: [UInt8]) {
        let (key, wrapped) = FieldCipher.newWrappedKey(master: master, context: Self.importKeyContext(importId))
        return (key, wrapped, masterId)
    }

    func unwrapImportKey(_ wrapped: [UInt8], wrappedBy: [UInt8]?, importId: UUID) throws -> SymmetricKey {
        try unwrap(wrapped, wrappedBy: wrappedBy, context: Self.importKeyContext(importId), what: "import's key")
    }

    static func importKeyContext(_ importId: UUID) -> String { "import-key:\(importId.lowercased)" }
}
