import Foundation

/// Who is calling: the API key a request presented, resolved to its tenant and scopes.
public struct CallerIdentity: Sendable, Equatable {
    public let keyId: UUID
    public let tenantId: UUID
    public let scopes: Set<Scope>

    public init(keyId: UUID, tenantId: UUID, scopes: Set<Scope>) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.scopes = scopes
    }

    public func has(_ scope: Scope) -> Bool { scopes.contains(scope) }
}

extension UUID {
    /// Ids as the API writes them: lower-case, as RFC 9562 recommends.
    public var lowercased: String { uuidString.lowercased() }
}
