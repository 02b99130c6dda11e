/// A person's identifier on a channel, normalised so that one person is one subject however the number or
/// address was typed: E.164 for phone channels, a lower-cased domain for e-mail.
public struct SubjectIdentifier: Sendable, Hashable, CustomStringConvertible {
    public let channel: MessageChannel
    public let value: String

    public enum Invalid: Error, Equatable, CustomStringConvertible {
        case phone(String)
        case email(String)

        public var description: String {
            switch self {
            case .phone(let why): "not a valid E.164 phone number: \(why)"
            case .email(let why): "not a valid e-mail address: \(why)"
            }
        }
    }

    public init(_ raw: String, channel: MessageChannel) throws(Invalid) {
        self.channel = channel
        self.value = channel.usesPhoneNumbers ? try Self.phone(raw) : try Self.email(raw)
    }

    /// Not printable by accident: identifiers are personal data and must not reach logs.
    public var description: String { "SubjectIdentifier(\(channel.rawValue), redacted)" }

    /// Strips spaces, dots, dashes and brackets; `00` becomes `+`; then `+` and 8 to 15 digits, the first not 0.
    /// A number without an international prefix is refused: guessing a country would merge different people.
    static func phone(_ raw: String) throws(Invalid) -> String {
        // Bytes, not Characters: a batch validates ten thousand of these, and grapheme breaking dominated it.
        // Any scalar beyond ASCII that is not a separator becomes 0xFF, which no check below accepts.
        var text: [UInt8] = []
        text.reserveCapacity(raw.utf8.count)
        for scalar in raw.unicodeScalars {
            switch scalar.value {
            case 0x20, 0x2E, 0x2D, 0x28, 0x29, 0x5B, 0x5D, 0xA0, 0x09: continue  // space . - ( ) [ ] NBSP tab
            case 0..<0x80: text.append(UInt8(scalar.value))
            default: text.append(0xFF)
            }
        }
        let digits: ArraySlice<UInt8>
        if text.starts(with: [0x30, 0x30]) {
            digits = text.dropFirst(2)
        } else if text.first == UInt8(ascii: "+") {
            digits = text.dropFirst()
        } else {
            throw .phone("it must start with + or 00 and the country code")
        }
        guard digits.allSatisfy({ (0x30...0x39).contains($0) }) else { throw .phone("only digits may follow the +") }
        guard (8...15).contains(digits.count) else { throw .phone("it must have 8 to 15 digits") }
        guard digits.first != 0x30 else { throw .phone("a country code never starts with 0") }
        return "+" + String(decoding: digits, as: UTF8.self)
    }

    /// Trims, keeps the local part as given (it may be case-sensitive), lower-cases the domain.
    static func email(_ raw: String) throws(Invalid) -> String {
        let text = raw.trimmingWhitespace()
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .email("it must contain exactly one @") }
        let (local, domain) = (parts[0], parts[1].lowercased())
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw .email("the part before @ must be 1 to 64 characters")
        }
        guard text.utf8.count <= 254 else { throw .email("it must be at most 254 characters") }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }),
            domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." })
        else { throw .email("the domain after @ is not a valid host name") }
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw .email("it must not contain spaces")
        }
        return local + "@" + domain
    }
}
