import ConsentCore
import Crypto
import Foundation
import Testing

@testable import ConsentStore

/// The sealed form an import's rows wait in (`ImportChunk`): what is written is what is read, and nothing else.
@Suite struct ImportChunkTests {
    static let chunk = ImportChunk(
        rows: [
            ImportRow(
                line: 2, subject: "+393331110001", purposes: ["marketing", "shipping_update"],
                collectedAt: Date(timeIntervalSince1970: 1_700_000_000.123_456_7), method: .import, pageUrl: nil,
                source: "crm", userAgent: nil, ipAddress: nil),
            ImportRow(
                line: 5, subject: "anna@xn--bcher-kva.de", purposes: ["marketing"],
                collectedAt: Date(timeIntervalSince1970: 946_684_800), method: .doubleOptIn,
                pageUrl: "https://shop.example/ü", source: nil, userAgent: "", ipAddress: "2001:db8::1"),
        ],
        rejections: [ImportRejection(line: 3, reason: "'subject' is not a valid E.164 phone number: …")])

    @Test func whatIsWrittenIsRead() throws {
        #expect(try ImportChunk(bytes: Self.chunk.bytes) == Self.chunk)
        #expect(try ImportChunk(bytes: ImportChunk().bytes) == ImportChunk())
        #expect(Self.chunk.firstLine == 2 && Self.chunk.lastLine == 5 && Self.chunk.count == 3)
    }

    @Test func bytesCutShortOrWithMoreAfterThemAreRefused() {
        let bytes = Self.chunk.bytes
        for length in [0, 1, 5, bytes.count / 2, bytes.count - 1] {
            #expect(throws: (any Error).self) { try ImportChunk(bytes: Array(bytes.prefix(length))) }
        }
        #expect(throws: (any Error).self) { try ImportChunk(bytes: bytes + [0]) }
        #expect(throws: (any Error).self) { try ImportChunk(bytes: [2] + bytes.dropFirst()) }
    }

    @Test func aChunkOpensOnlyUnderItsImportKeyAndPlace() throws {
        let key = SymmetricKey(size: .bits256)
        let importId = UUID()
        let sealed = Self.chunk.sealed(with: key, importId: importId, seq: 4)
        #expect(try ImportChunk.open(sealed, key: key, importId: importId, seq: 4) == Self.chunk)
        #expect(throws: (any Error).self) { try ImportChunk.open(sealed, key: key, importId: importId, seq: 5) }
        #expect(throws: (any Error).self) { try ImportChunk.open(sealed, key: key, importId: UUID(), seq: 4) }
        #expect(throws: (any Error).self) {
            try ImportChunk.open(sealed, key: SymmetricKey(size: .bits256), importId: importId, seq: 4)
        }
    }
}
