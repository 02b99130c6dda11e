import Crypto
import Foundation

/// The Standard Webhooks signature: HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`, written
/// `v1,<base64>`; several signatures (during a secret rotation, the new secret's and the old one's) are separated
/// by spaces, and a receiver accepts the message if any one verifies.
public enum StandardWebhookSignature {
    public static func sign(id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret.key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// The `webhook-signature` header: one signature per secret, in the order given.
    public static func header(id: String, timestamp: Int64, body: [UInt8], secrets: [WebhookSecret]) -> String {
        secrets.map { sign(id: id, timestamp: timestamp, body: body, secret: $0) }.joined(separator: " ")
    }

    /// A receiver's check, for tests and for operators' tools: true when one of the header's `v1` signatures is
    /// the secret's, compared in constant time.
    public static func verify(header: String, id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret)
        -> Bool
    {
        var message = Array("\(id).\(timestamp).".utf8)
        message.append(contentsOf: body)
        let key = SymmetricKey(data: secret.key)
        for candidate in header.split(separator: " ") where candidate.hasPrefix("v1,") {
            guard let mac = Data(base64Encoded: String(candidate.dropFirst(3))) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: message, using: key) { return true }
        }
        return false
    }
}
