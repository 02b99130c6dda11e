import Crypto
import Foundation

/// The token of a self-service link: who (tenant, subject), until when, issued by which key, and an HMAC-SHA256
/// over all of that under the tenant's link key. It names the subject by its internal id only, so the URL carries
/// no personal data; it needs no table, and erasure voids it (the subject it names is gone).
public struct SelfServiceLink: Sendable, Equatable {
    public let tenantId: UUID
    public let subjectId: UUID
    public let issuedBy: UUID?
    public let expiresAt: Date

    public init(tenantId: UUID, subjectId: UUID, issuedBy: UUID?, expiresAt: Date) {
        self.tenantId = tenantId
        self.subjectId = subjectId
        self.issuedBy = issuedBy
        // Whole seconds: the token carries no more.
        self.expiresAt = Date(timeIntervalSince1970: expiresAt.timeIntervalSince1970.rounded(.down))
    }

    static let version: UInt8 = 1
    static let claimsLength = 1 + 16 + 16 + 16 + 8

    public enum Rejection: Error, Equatable {
        case malformed
        case badSignature
        case expired
    }

    /// URL-safe base64 without padding.
    public func token(key: SymmetricKey) -> String {
        let claims = encodedClaims()
        let mac = HMAC<SHA256>.authenticationCode(for: claims, using: key)
        return Base64URL.encode(claims + Array(mac))
    }

    /// The tenant a token claims, read before its signature can be checked (the key is the tenant's).
    public static func claimedTenant(_ token: String) -> UUID? {
        guard let bytes = Base64URL.decode(token), bytes.count == claimsLength + 32, bytes[0] == version else {
            return nil
        }
        return UUID(bytes: Array(bytes[1..<17]))
    }

    /// The link, if the token is well formed, signed under `key` and not expired at `now`.
    public static func verify(_ token: String, key: SymmetricKey, now: Date) throws(Rejection) -> SelfServiceLink {
        guard let bytes = Base64URL.decode(token), bytes.count == claimsLength + 32, bytes[0] == version,
            let tenant = UUID(bytes: Array(bytes[1..<17])), let subject = UUID(bytes: Array(bytes[17..<33])),
            let issuer = UUID(bytes: Array(bytes[33..<49]))
        else { throw .malformed }
        let claims = Array(bytes[0..<claimsLength])
        guard HMAC<SHA256>.isValidAuthenticationCode(Array(bytes[claimsLength...]), authenticating: claims, using: key)
        else { throw .badSignature }
        let seconds = bytes[49..<57].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard now < expiresAt else { throw .expired }
        return SelfServiceLink(
            tenantId: tenant, subjectId: subject, issuedBy: issuer == UUID.nil ? nil : issuer,
            expiresAt: expiresAt)
    }

    func encodedClaims() -> [UInt8] {
        let seconds = UInt64(max(0, expiresAt.timeIntervalSince1970))
        return [Self.version] + tenantId.bytes + subjectId.bytes + (issuedBy ?? UUID.nil).bytes
            + (0..<8).reversed().map { UInt8(truncatingIfNeeded: seconds >> (8 * UInt64($0))) }
    }
}

extension UUID {
    public var bytes: [UInt8] { withUnsafeBytes(of: uuid) { Array($0) } }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self = bytes.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
    }
}

/// RFC 4648 §5 base64url, unpadded: tokens that sit in URL paths.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.count <= 1024,
            text.utf8.allSatisfy({
                (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D
                    || $0 == 0x5F
            })
        else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}

/// A bearer token bound to a tenant: the tenant's id (so a keyless request knows whose rows to read under row-level
/// security) and 32 random bytes. Checkout consent sessions and console sign-ins use it; only its SHA-256 is stored.
public struct TenantToken: Sendable, Equatable {
    public let tenantId: UUID
    public let text: String

    public static func generate(tenantId: UUID) -> TenantToken {
        TenantToken(tenantId: tenantId, text: Base64URL.encode(tenantId.bytes + randomBytes(32)))
    }

    /// From the system's cryptographically secure generator.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in generator.next() }
    }

    /// Nil for anything that is not a token of this shape.
    public init?(_ text: String) {
        guard let bytes = Base64URL.decode(text), bytes.count == 48, let tenant = UUID(bytes: Array(bytes[0..<16]))
        else { return nil }
        self.tenantId = tenant
        self.text = text
    }

    init(tenantId: UUID, text: String) {
        self.tenantId = tenantId
        self.text = text
    }

    public var sha256: [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }
}

extension UUID {
    /// All zero bits: a link signed by no key says so with this id.
    static let `nil` = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
}
