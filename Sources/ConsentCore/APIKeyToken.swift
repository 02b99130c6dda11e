import Crypto
import Foundation

/// The secret string a client presents as `Authorization: Bearer <token>`.
///
/// Shape: `clk_` + 40 base62 characters of randomness (about 238 bits) + 6 base62 characters of CRC-32 over the
/// random part. The fixed prefix lets secret scanners find leaked keys; the checksum lets them (and us) reject
/// look-alikes without a database round trip. Only the SHA-256 of the whole token is stored.
public struct APIKeyToken: Sendable, Equatable {
    public static let prefix = "clk_"
    static let randomLength = 40
    static let checksumLength = 6
    public static let length = prefix.count + randomLength + checksumLength

    public let value: String

    /// Validates the shape and checksum of a presented token; returns nil for anything that cannot be one of ours.
    public init?(parsing candidate: some StringProtocol) {
        // Every request parses its key, so this reads the bytes in place: no arrays, no generic sequence walks.
        guard candidate.utf8.count == Self.length else { return nil }
        let value = String(candidate)
        guard value.utf8.withContiguousStorageIfAvailable(Self.isWellFormed) ?? Self.isWellFormed(Array(value.utf8))
        else { return nil }
        self.value = value
    }

    /// The prefix, base62 after it, and a checksum that matches the random part.
    private static func isWellFormed(_ bytes: some RandomAccessCollection<UInt8>) -> Bool {
        guard bytes.count == length, bytes.starts(with: prefix.utf8) else { return false }
        let body = bytes.dropFirst(prefix.utf8.count)
        guard body.allSatisfy(Base62.contains) else { return false }
        var rest = CRC32.checksum(body.prefix(randomLength))
        for digit in body.suffix(checksumLength).reversed() {
            guard digit == Base62.alphabet[Int(rest % 62)] else { return false }
            rest /= 62
        }
        return true
    }

    /// A new token from the system's secure random generator.
    public static func generate() -> APIKeyToken {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<randomLength).map { _ in Base62.alphabet[Int(generator.next(upperBound: UInt8(62)))] }
        let checksum = Base62.encode(CRC32.checksum(random), width: checksumLength)
        let token = prefix + String(decoding: random + checksum, as: UTF8.self)
        return APIKeyToken(parsing: token)!
    }

    /// What is stored and looked up: SHA-256 of the token's UTF-8 bytes.
    public var storedHash: [UInt8] { Array(SHA256.hash(data: Array(value.utf8))) }

    /// The part that listings show, enough to recognise a key without revealing it.
    public var displayPrefix: String { String(value.prefix(Self.prefix.count + 6)) }
}

enum Base62 {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    static func contains(_ byte: UInt8) -> Bool {
        (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
    }

    /// Fixed-width, most significant digit first.
    static func encode(_ number: UInt32, width: Int) -> [UInt8] {
        var digits = [UInt8](repeating: alphabet[0], count: width)
        var rest = number
        for index in stride(from: width - 1, through: 0, by: -1) {
            digits[index] = alphabet[Int(rest % 62)]
            rest /= 62
        }
        return digits
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var crc = UInt32(index)
        for _ in 0..<8 { crc = (crc & 1) == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        return crc
    }

    static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
