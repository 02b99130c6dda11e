import Crypto
import Foundation

/// Meta's `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw request body under the app secret.
public enum WebhookSignature {
    /// True only for a well-formed header whose MAC matches; compared in constant time, so a forger learns nothing
    /// from how long a wrong guess takes.
    public static func isValid(header: String?, body: some DataProtocol, appSecret: [UInt8]) -> Bool {
        guard let header, header.hasPrefix("sha256="),
            let presented = [UInt8](hex: String(header.dropFirst("sha256=".count)).lowercased()),
            presented.count == SHA256.byteCount
        else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            presented, authenticating: body, using: SymmetricKey(data: appSecret))
    }

    /// The header value a sender computes; tests and the operations guide use it.
    public static func header(body: some DataProtocol, appSecret: [UInt8]) -> String {
        "sha256=" + Array(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: appSecret))).hexString
    }
}

/// Equal-length byte strings compared without an early exit.
public enum ConstantTime {
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
