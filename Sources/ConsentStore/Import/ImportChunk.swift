import ConsentCore
import Crypto
import Foundation

/// A chunk of an import as it waits to be recorded: the rows that passed their checks and the rejections, in line
/// order, sealed under the import's own key (the identifiers in it are personal data).
///
/// Written in a compact binary form of its own (`bytes`, `init(bytes:)`) rather than JSON: a million rows are
/// written once and read once, and Foundation's JSON coders took 13 and 10 µs a row of it.
struct ImportChunk: Sendable, Equatable {
    var rows: [ImportRow] = []
    var rejections: [ImportRejection] = []

    /// How many lines a chunk holds: one transaction, one audit event, one Merkle root.
    static let lines = 5_000

    var count: Int { rows.count + rejections.count }
    var firstLine: Int { min(rows.first?.line ?? .max, rejections.first?.line ?? .max) }
    var lastLine: Int { max(rows.last?.line ?? 0, rejections.last?.line ?? 0) }

    func sealed(with key: SymmetricKey, importId: UUID, seq: Int) -> [UInt8] {
        FieldCipher.seal(bytes, key: key, context: Self.context(importId, seq))
    }

    static func open(_ sealed: [UInt8], key: SymmetricKey, importId: UUID, seq: Int) throws -> ImportChunk {
        try ImportChunk(bytes: try FieldCipher.open(sealed, key: key, context: context(importId, seq)))
    }

    private static func context(_ importId: UUID, _ seq: Int) -> String { "import-chunk:\(importId.lowercased):\(seq)" }

    /// Version byte, then the rows and the rejections, each list counted; integers little-endian, strings
    /// counted, an absent string counted 0xFFFFFFFF, a time as the bits of its Double (exact).
    var bytes: [UInt8] {
        var out: [UInt8] = [1]
        out.reserveCapacity(rows.count * 96 + rejections.count * 48)
        Self.put(UInt32(rows.count), &out)
        for row in rows {
            Self.put(UInt32(row.line), &out)
            Self.put(row.subject, &out)
            Self.put(UInt32(row.purposes.count), &out)
            for purpose in row.purposes { Self.put(purpose, &out) }
            Self.put(row.collectedAt.timeIntervalSince1970.bitPattern, &out)
            Self.put(row.method.rawValue, &out)
            for text in [row.pageUrl, row.source, row.userAgent, row.ipAddress] { Self.put(text, &out) }
        }
        Self.put(UInt32(rejections.count), &out)
        for rejection in rejections {
            Self.put(UInt32(rejection.line), &out)
            Self.put(rejection.reason, &out)
        }
        return out
    }

    init(rows: [ImportRow] = [], rejections: [ImportRejection] = []) {
        self.rows = rows
        self.rejections = rejections
    }

    init(bytes: [UInt8]) throws {
        var reader = ChunkReader(bytes: bytes)
        guard try reader.byte() == 1 else { throw ChunkReader.Unreadable() }
        for _ in 0..<(try reader.uint32()) {
            let line = Int(try reader.uint32())
            let subject = try reader.text()
            var purposes: [String] = []
            for _ in 0..<(try reader.uint32()) { purposes.append(try reader.text()) }
            let collectedAt = Date(timeIntervalSince1970: Double(bitPattern: try reader.uint64()))
            guard let method = CollectionMethod(rawValue: try reader.text()) else { throw ChunkReader.Unreadable() }
            rows.append(
                ImportRow(
                    line: line, subject: subject, purposes: purposes, collectedAt: collectedAt, method: method,
                    pageUrl: try reader.optionalText(), source: try reader.optionalText(),
                    userAgent: try reader.optionalText(), ipAddress: try reader.optionalText()))
        }
        for _ in 0..<(try reader.uint32()) {
            rejections.append(ImportRejection(line: Int(try reader.uint32()), reason: try reader.text()))
        }
        guard reader.atEnd else { throw ChunkReader.Unreadable() }
    }

    private static func put<T: FixedWidthInteger>(_ value: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func put(_ text: String?, _ out: inout [UInt8]) {
        guard let text else { return put(UInt32.max, &out) }
        put(UInt32(text.utf8.count), &out)
        out.append(contentsOf: text.utf8)
    }
}

/// Reads `ImportChunk.bytes`; anything short or out of place is unreadable.
private struct ChunkReader {
    struct Unreadable: Error, CustomStringConvertible {
        var description: String { "an import chunk's bytes cannot be read" }
    }

    let bytes: [UInt8]
    var at = 0

    var atEnd: Bool { at == bytes.count }

    mutating func byte() throws -> UInt8 {
        guard at < bytes.count else { throw Unreadable() }
        defer { at += 1 }
        return bytes[at]
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        guard bytes.count - at >= size else { throw Unreadable() }
        var value: T = 0
        for index in 0..<size { value |= T(bytes[at + index]) << (8 * index) }
        at += size
        return value
    }

    mutating func uint32() throws -> UInt32 { try integer(UInt32.self) }
    mutating func uint64() throws -> UInt64 { try integer(UInt64.self) }

    mutating func optionalText() throws -> String? {
        let count = try uint32()
        if count == UInt32.max { return nil }
        guard bytes.count - at >= Int(count) else { throw Unreadable() }
        defer { at += Int(count) }
        guard let text = String(validating: bytes[at..<(at + Int(count))], as: UTF8.self) else { throw Unreadable() }
        return text
    }

    mutating func text() throws -> String {
        guard let text = try optionalText() else { throw Unreadable() }
        return text
    }
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
