import Foundation

/// A person's identifier on a channel, normalised so that one person is one subject however the number or
/// address was typed: E.164 for phone channels; for e-mail, NFC, a lower-cased local part and the domain's IDNA
/// ASCII form.
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

    /// An identifier exactly as an earlier build normalised and stored it, not normalised again: only for
    /// recomputing the keyed hashes that build made (`SubjectReindexer` carries suppression entries from them).
    /// Never for a write: what is written is what `init(_:channel:)` makes.
    package init(storedByEarlierBuild value: String, channel: MessageChannel) {
        self.channel = channel
        self.value = value
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

    /// Trims; NFC-normalises the whole address; lower-cases the local part; writes the domain as IDNA A-labels
    /// (`anna@bücher.de` and `Anna@XN--BCHER-KVA.DE` are both `anna@xn--bcher-kva.de`).
    ///
    /// The local part is lower-cased although RFC 5321 lets a mailbox treat it as case-sensitive: no real mailbox
    /// provider does, and treating `Anna@x.it` and `anna@x.it` as two people lets a withdrawal under one miss a
    /// check of the other. A consent ledger must err towards merging. The value is what the blind index hashes,
    /// so a change here moves every stored e-mail subject (`SubjectReindexer` re-indexes and merges them).
    static func email(_ raw: String) throws(Invalid) -> String {
        let text = canonical(raw.trimmingWhitespace())
        guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw .email("it must not contain spaces")
        }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .email("it must contain exactly one @") }
        let local = canonical(parts[0].lowercased())
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw .email("the part before @ must be 1 to 64 characters")
        }
        guard text.utf8.count <= 254 else { throw .email("it must be at most 254 characters") }
        let address = local + "@" + (try asciiDomain(parts[1]))
        // The A-labels can be longer than the Unicode the person typed.
        guard address.utf8.count <= 254 else { throw .email("it must be at most 254 characters") }
        return address
    }

    /// NFC. ASCII is its own NFC (and NFKC), and nearly every address is ASCII: a batch of ten thousand skips
    /// Foundation's normaliser for those.
    private static func canonical(_ text: String) -> String {
        text.utf8.allSatisfy { $0 < 0x80 } ? text : text.precomposedStringWithCanonicalMapping
    }

    /// The domain in the ASCII form DNS and every mail system use: each label mapped as IDNA's UTS 46 maps it (NFKC,
    /// so full-width letters are the letters; lower case; NFC), then written as an A-label (`xn--` and Punycode)
    /// when it is not ASCII. A label already in `xn--` form must decode to the lower-case NFC Unicode label it
    /// claims to be, and is kept. Not implemented, since they refuse rather than merge: the bidi and contextual
    /// rules of RFC 5893 and RFC 5892 appendix A (joiners are refused outright).
    private static func asciiDomain(_ raw: Substring) throws(Invalid) -> String {
        let labels = raw.split(omittingEmptySubsequences: false, whereSeparator: isLabelSeparator)
        guard labels.count >= 2 else { throw .email("the domain after @ is not a valid host name") }
        var ascii: [String] = []
        for label in labels {
            let mapped = mapLabel(String(label))
            guard !mapped.isEmpty, !mapped.hasPrefix("-"), !mapped.hasSuffix("-") else {
                throw .email("the domain after @ is not a valid host name")
            }
            let encoded = try aLabel(mapped)
            guard encoded.utf8.count <= 63 else {
                throw .email("each part of the domain after @ must be at most 63 characters in its xn-- form")
            }
            ascii.append(encoded)
        }
        let domain = ascii.joined(separator: ".")
        guard domain.utf8.count <= 253 else {
            throw .email("the domain after @ must be at most 253 characters in its xn-- form")
        }
        return domain
    }

    /// UTS 46 maps the ideographic and full-width full stops to `.` before a domain is split into labels.
    private static func isLabelSeparator(_ character: Character) -> Bool {
        character == "." || character == "\u{3002}" || character == "\u{FF0E}" || character == "\u{FF61}"
    }

    private static func mapLabel(_ label: String) -> String {
        if label.utf8.allSatisfy({ $0 < 0x80 }) { return label.lowercased() }
        return label.precomposedStringWithCompatibilityMapping.lowercased().precomposedStringWithCanonicalMapping
    }

    /// The ASCII form of one mapped label.
    private static func aLabel(_ label: String) throws(Invalid) -> String {
        guard label.utf8.allSatisfy({ $0 < 0x80 }) else {
            try checkULabel(label)
            guard let punycode = Punycode.encode(label.unicodeScalars) else {
                throw .email("the domain after @ is too long")
            }
            return "xn--" + punycode
        }
        guard label.unicodeScalars.allSatisfy(isLetterDigitHyphen) else { throw invalidCharacters }
        if label.hasPrefix("xn--") {
            // An A-label that does not round-trip would let two spellings of one domain hash differently.
            let punycode = label.dropFirst(4)
            guard let unicode = Punycode.decode(punycode), !unicode.utf8.allSatisfy({ $0 < 0x80 }),
                mapLabel(unicode) == unicode, (try? checkULabel(unicode)) != nil,
                Punycode.encode(unicode.unicodeScalars) == String(punycode)
            else { throw .email("the domain after @ has an xn-- part that is not valid Punycode") }
        }
        return label
    }

    /// Letters, combining marks (never first), decimal digits and hyphens, with no `--` in the third and fourth
    /// places (reserved for `xn--`): what IDNA2008 allows in a label, near enough to refuse what it refuses.
    private static func checkULabel(_ label: String) throws(Invalid) {
        let scalars = Array(label.unicodeScalars)
        guard let first = scalars.first, !isMark(first), scalars.allSatisfy({ isLetterDigitHyphen($0) || isMark($0) })
        else { throw invalidCharacters }
        guard scalars.count < 4 || scalars[2] != "-" || scalars[3] != "-" else {
            throw .email("the domain after @ is not a valid host name")
        }
    }

    private static let invalidCharacters = Invalid.email(
        "the domain after @ may hold only letters, digits and hyphens between its dots")

    private static func isLetterDigitHyphen(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .lowercaseLetter, .uppercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter, .decimalNumber:
            true
        default: scalar == "-"
        }
    }

    private static func isMark(_ scalar: Unicode.Scalar) -> Bool {
        [.nonspacingMark, .spacingMark].contains(scalar.properties.generalCategory)
    }
}
