import ConsentCore
import Crypto
import Foundation

/// The code a DPO types to confirm an erasure: random, shown on the subject page, and bound to the console session
/// and the person by an HMAC under the session's CSRF token, so that it is checked without being stored and a code
/// read on one person's page confirms nobody else's erasure. It replaced the identifier's last four characters,
/// which for most e-mail addresses were ".com" and could be typed without reading the page (issue 21, finding 8).
struct ErasureConfirmation: Sendable, Equatable {
    /// Six characters without the ones read alike (0/O, 1/I/L): about 2^29 codes.
    static let alphabet = Array("ABCDEFGHJKMNPQRSTUVWXYZ23456789")
    static let length = 6

    let code: String
    /// Sent back with the form: the HMAC of the person and the code.
    let seal: String

    /// A fresh code for `subject`'s page in the session whose CSRF token is `sessionSecret`.
    static func issue(
        for subject: SubjectIdentifier, sessionSecret: String,
        using generator: inout some RandomNumberGenerator
    ) -> ErasureConfirmation {
        let code = String((0..<length).map { _ in alphabet.randomElement(using: &generator) ?? "A" })
        return ErasureConfirmation(
            code: code, seal: mac(code, subject: subject, sessionSecret: sessionSecret).hexString)
    }

    static func issue(for subject: SubjectIdentifier, sessionSecret: String) -> ErasureConfirmation {
        var generator = SystemRandomNumberGenerator()
        return issue(for: subject, sessionSecret: sessionSecret, using: &generator)
    }

    /// Whether `typed` is the code sealed in `seal` for this person and session. Case and surrounding spaces do
    /// not matter; the comparison takes the same time wherever the seals differ.
    static func accepts(typed: String, seal: String, subject: SubjectIdentifier, sessionSecret: String) -> Bool {
        let code = typed.trimmingCharacters(in: .whitespaces).uppercased()
        let expected = mac(code, subject: subject, sessionSecret: sessionSecret)
        guard code.count == length, let given = [UInt8](hex: seal), given.count == expected.count else { return false }
        return zip(expected, given).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func mac(_ code: String, subject: SubjectIdentifier, sessionSecret: String) -> [UInt8] {
        var message = Array("erasure-confirmation".utf8) + [0]
        message += Array(subject.channel.rawValue.utf8) + [0]
        message += Array(subject.value.utf8) + [0]
        message += Array(code.utf8)
        let key = SymmetricKey(data: Array(sessionSecret.utf8))
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }
}
