import Crypto

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
