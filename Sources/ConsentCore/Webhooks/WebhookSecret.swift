import Crypto
import Foundation

/// An endpoint's signing secret in the Standard Webhooks form: `whsec_` and the base64 of 32 random bytes. The
/// receiver decodes what follows the prefix and keys HMAC-SHA256 with those bytes.
public struct WebhookSecret: Sendable, Equatable {
    public let key: [UInt8]

    public static let prefix = "whsec_"

    public init(key: [UInt8]) {
        self.key = key
    }

    public static func generate() -> WebhookSecret {
        WebhookSecret(key: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// Nil for anything that is not `whsec_` and base64 of at least 24 bytes.
    public init?(encoded: String) {
        guard encoded.hasPrefix(Self.prefix),
            let bytes = Data(base64Encoded: String(encoded.dropFirst(Self.prefix.count))), bytes.count >= 24
        else { return nil }
        key = Array(bytes)
    }

    public var encoded: String { Self.prefix + Data(key).base64EncodedString() }
}
