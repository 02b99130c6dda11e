import Crypto
import Foundation

/// C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys (signature type 0x01).
///
/// A note is text ending in a newline, a blank line, then signature lines `— <name> <base64(key hash || sig)>`.
/// The key hash is the first four bytes of SHA-256(name || "\n" || 0x01 || public key).
public enum SignedNote {
    static let ed25519: UInt8 = 0x01
    static let signaturePrefix = "\u{2014} "

    /// Names may not be empty or contain spaces, newlines or `+`.
    public static func isValidKeyName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace }
    }

    public static func keyHash(name: String, publicKey: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(name.utf8) + [0x0A, ed25519] + publicKey)
        return Array(hasher.finalize().prefix(4))
    }

    /// `<name>+<hex key hash>+<base64(0x01 || key)>`.
    public static func verifierKey(name: String, publicKey: [UInt8]) -> String {
        "\(name)+\(keyHash(name: name, publicKey: publicKey).hexString)+\(Data([ed25519] + publicKey).base64EncodedString())"
    }
}

public enum SignedNoteError: Error, Equatable, CustomStringConvertible {
    case invalidKeyName
    case invalidKey
    case textMustEndInNewline
    case malformed(String)
    case noSignatureByKey(String)
    case badSignature(String)

    public var description: String {
        switch self {
        case .invalidKeyName: "a note key name must be non-empty with no spaces or '+'"
        case .invalidKey: "not an Ed25519 note key"
        case .textMustEndInNewline: "note text must end in a newline"
        case .malformed(let why): "malformed note: \(why)"
        case .noSignatureByKey(let name): "the note carries no signature by the key \(name)"
        case .badSignature(let name): "the signature by \(name) does not verify"
        }
    }
}

/// Signs notes with an Ed25519 key made from a 32-byte seed (RFC 8032 private key).
public struct NoteSigner: Sendable {
    public let name: String
    private let key: Curve25519.Signing.PrivateKey

    public init(name: String, seed: [UInt8]) throws(SignedNoteError) {
        guard SignedNote.isValidKeyName(name) else { throw .invalidKeyName }
        guard seed.count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
            throw .invalidKey
        }
        self.name = name
        self.key = key
    }

    public var publicKey: [UInt8] { Array(key.publicKey.rawRepresentation) }
    public var keyHash: [UInt8] { SignedNote.keyHash(name: name, publicKey: publicKey) }
    public var verifier: NoteVerifier { NoteVerifier(uncheckedName: name, publicKey: publicKey) }

    /// The signed note: `text`, a blank line, and this key's signature line.
    public func sign(_ text: String) throws -> String {
        guard text.hasSuffix("\n") else { throw SignedNoteError.textMustEndInNewline }
        let signature = try key.signature(for: Array(text.utf8))
        let blob = Data(keyHash + Array(signature)).base64EncodedString()
        return text + "\n" + SignedNote.signaturePrefix + name + " " + blob + "\n"
    }
}

/// Checks notes against one Ed25519 key, identified as verifiers identify it: by name and key hash.
public struct NoteVerifier: Sendable, Equatable {
    public let name: String
    public let publicKey: [UInt8]

    init(uncheckedName name: String, publicKey: [UInt8]) {
        self.name = name
        self.publicKey = publicKey
    }

    public init(name: String, publicKey: [UInt8]) throws(SignedNoteError) {
        guard SignedNote.isValidKeyName(name) else { throw .invalidKeyName }
        guard publicKey.count == 32 else { throw .invalidKey }
        self.init(uncheckedName: name, publicKey: publicKey)
    }

    /// Parses a verifier key string and checks that its key hash matches its name and key.
    public init(verifierKey: String) throws(SignedNoteError) {
        let parts = verifierKey.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let hash = [UInt8](hex: String(parts[1])), hash.count == 4,
            let keyBytes = Data(base64Encoded: String(parts[2])), keyBytes.count == 33,
            keyBytes.first == SignedNote.ed25519
        else { throw .invalidKey }
        try self.init(name: String(parts[0]), publicKey: Array(keyBytes.dropFirst()))
        guard keyHash == hash else { throw .invalidKey }
    }

    public var keyHash: [UInt8] { SignedNote.keyHash(name: name, publicKey: publicKey) }
    public var verifierKey: String { SignedNote.verifierKey(name: name, publicKey: publicKey) }

    /// The note's text when it carries a valid signature by this key; signatures by other keys are ignored,
    /// as the spec asks of verifiers.
    public func open(_ note: String) throws(SignedNoteError) -> String {
        let bytes = Array(note.utf8)
        guard bytes.last == 0x0A else { throw .malformed("does not end in a newline") }
        // The text ends at the last blank line; everything after it is signature lines.
        var split: Int?
        var index = bytes.count - 2
        while index >= 0 {
            if bytes[index] == 0x0A && bytes[index + 1] == 0x0A {
                split = index
                break
            }
            index -= 1
        }
        guard let split else { throw .malformed("no blank line before the signatures") }
        let text = String(decoding: bytes[...split], as: UTF8.self)
        let signatureLines = String(decoding: bytes[(split + 2)...], as: UTF8.self)
            .split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        guard !signatureLines.isEmpty else { throw .malformed("no signature lines") }
        guard let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { throw .invalidKey }
        for line in signatureLines {
            guard line.hasPrefix(SignedNote.signaturePrefix) else { throw .malformed("a signature line lacks '— '") }
            let fields = line.dropFirst(SignedNote.signaturePrefix.count).split(
                separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let blob = Data(base64Encoded: String(fields[1])), blob.count >= 5 else {
                throw .malformed("a signature line is not '— <name> <base64>'")
            }
            guard String(fields[0]) == name, Array(blob.prefix(4)) == keyHash else { continue }
            guard publicKey.isValidSignature(blob.dropFirst(4), for: Array(text.utf8)) else {
                throw .badSignature(name)
            }
            return text
        }
        throw .noSignatureByKey(name)
    }
}
