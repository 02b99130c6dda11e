/// What an API key may do. The raw values are the contract's scope names.
public enum Scope: String, CaseIterable, Sendable, Codable, Hashable, Comparable {
    case consentWrite = "consent:write"
    case consentCheck = "consent:check"
    case dpo
    case admin

    public static func < (lhs: Scope, rhs: Scope) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// Parses a list of scope names; the first unknown name is reported so the caller can name it.
    public static func parse(_ names: [String]) -> Result<Set<Scope>, UnknownScope> {
        var scopes = Set<Scope>()
        for name in names {
            guard let scope = Scope(rawValue: name) else { return .failure(UnknownScope(name: name)) }
            scopes.insert(scope)
        }
        return .success(scopes)
    }
}

public struct UnknownScope: Error, Equatable, CustomStringConvertible {
    public let name: String
    public var description: String {
        "unknown scope '\(name)'; expected one of \(Scope.allCases.map(\.rawValue).joined(separator: ", "))"
    }
}
