import Crypto
import Foundation

/// The wording a person is shown when asked to consent. Immutable once stored: its hash is the proof of what was
/// shown.
public enum NoticeText {
    public static let maxBytes = 20_000

    /// Hex SHA-256 of the UTF-8 text, exactly as stored (no trimming or normalisation).
    public static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).hexString
    }

    /// A BCP 47 language tag in its common shape: `it`, `en-GB`, `pt-BR`, `zh-Hant-TW`.
    public static func isValidLanguage(_ tag: String) -> Bool {
        let parts = tag.split(separator: "-", omittingEmptySubsequences: false)
        guard let first = parts.first, (2...3).contains(first.count), first.allSatisfy({ $0.isASCII && $0.isLetter }),
            tag.count <= 35
        else { return false }
        return parts.dropFirst().allSatisfy { part in
            (2...8).contains(part.count) && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
        }
    }
}

/// A stored notice: the exact wording, its hash (hex SHA-256), and the purposes it covers.
public struct Notice: Sendable, Equatable {
    public let id: UUID
    public let channel: MessageChannel
    public let language: String
    public let version: Int
    public let text: String
    public let textSha256: String
    public let purposes: [String]
    public let createdAt: Date

    public init(
        id: UUID, channel: MessageChannel, language: String, version: Int, text: String, textSha256: String,
        purposes: [String], createdAt: Date
    ) {
        self.id = id
        self.channel = channel
        self.language = language
        self.version = version
        self.text = text
        self.textSha256 = textSha256
        self.purposes = purposes
        self.createdAt = createdAt
    }
}
