import Foundation

/// Who is acting: the API key a request presented, resolved to its tenant and scopes, or a channel that acts on a
/// person's behalf without a key (a checkout's consent session, a self-service link, a platform webhook).
public struct CallerIdentity: Sendable, Equatable {
    /// The key behind the change: the caller's own, or the one that opened the session or issued the link. Nil for
    /// a platform webhook, which signs with the tenant's app secret instead.
    public let keyId: UUID?
    public let tenantId: UUID
    public let scopes: Set<Scope>
    /// How the audit log names the actor: the key's id, or the channel (`consent_session:<id>`, `self_service`,
    /// `whatsapp_webhook`). Never personal data.
    public let actor: String

    public init(keyId: UUID, tenantId: UUID, scopes: Set<Scope>) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.scopes = scopes
        self.actor = keyId.lowercased
    }

    /// A channel acting for the person: it may write consent changes and nothing else.
    public static func channel(_ actor: String, tenantId: UUID, vouchedBy keyId: UUID?) -> CallerIdentity {
        CallerIdentity(keyId: keyId, tenantId: tenantId, scopes: [.consentWrite], actor: actor)
    }

    init(keyId: UUID?, tenantId: UUID, scopes: Set<Scope>, actor: String) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.scopes = scopes
        self.actor = actor
    }

    public func has(_ scope: Scope) -> Bool { scopes.contains(scope) }
}

extension UUID {
    /// Ids as the API writes them: lower-case, as RFC 9562 recommends. Written byte by byte: `uuidString` formats
    /// with the C library's printf on Linux, which showed in the profile of an import (a leaf, a seal context and
    /// a bind per row).
    public var lowercased: String {
        let digits: StaticString = "0123456789abcdef"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                var at = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[at] = UInt8(ascii: "-")
                        at += 1
                    }
                    text[at] = digits.utf8Start[Int(byte >> 4)]
                    text[at + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    at += 2
                }
                return at
            }
        }
    }
}
