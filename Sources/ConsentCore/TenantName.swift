/// A tenant's operator-facing name: lower-case letters, digits, `-` and `_`, starting with a letter or digit,
/// at most 63 characters, so it is safe in command lines, logs and checkpoint origins.
public struct TenantName: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    public init?(_ candidate: String) {
        let bytes = Array(candidate.utf8)
        guard (1...63).contains(bytes.count) else { return nil }
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            (97...122).contains(byte) || (48...57).contains(byte) || (!first && (byte == 45 || byte == 95))
        }
        guard allowed(bytes[0], first: true), bytes.dropFirst().allSatisfy({ allowed($0, first: false) }) else {
            return nil
        }
        self.value = candidate
    }

    public var description: String { value }

    public static let rule = "1 to 63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
}
