import Foundation

/// A token bucket: `capacity` requests at once, refilled at `ratePerSecond`. Pure arithmetic over the times it is
/// given, so every edge (empty, full, long idle, clock going backwards) is unit-tested without waiting.
public struct TokenBucket: Sendable, Equatable {
    public let capacity: Double
    public let ratePerSecond: Double
    public private(set) var tokens: Double
    public private(set) var updatedAt: TimeInterval

    public init(capacity: Int, ratePerSecond: Double, now: TimeInterval) {
        precondition(capacity > 0 && ratePerSecond > 0, "a bucket needs room and a refill rate")
        self.capacity = Double(capacity)
        self.ratePerSecond = ratePerSecond
        self.tokens = Double(capacity)
        self.updatedAt = now
    }

    public enum Decision: Sendable, Equatable {
        case allowed
        /// Refused; a token will be there after this many seconds (what `Retry-After` says, rounded up).
        case limited(retryAfter: TimeInterval)
    }

    /// The tokens there would be at `now`, without taking any.
    public func available(at now: TimeInterval) -> Double {
        now > updatedAt ? min(capacity, tokens + (now - updatedAt) * ratePerSecond) : tokens
    }

    /// Takes one token if there is one. A clock that went backwards adds nothing and takes nothing away.
    public mutating func take(now: TimeInterval) -> Decision {
        if now > updatedAt {
            tokens = available(at: now)
            updatedAt = now
        }
        if tokens >= 1 {
            tokens -= 1
            return .allowed
        }
        return .limited(retryAfter: (1 - tokens) / ratePerSecond)
    }
}

/// Requests per second and burst for each scope (`CONSENTD_RATE_LIMIT_<SCOPE>` = `<per second>/<burst>`, e.g.
/// `CONSENTD_RATE_LIMIT_CONSENT_CHECK=2000/4000`). A key with several scopes gets the most generous of them.
public struct RateLimits: Sendable, Equatable {
    public struct Limit: Sendable, Equatable {
        public let perSecond: Double
        public let burst: Int
        public init(perSecond: Double, burst: Int) {
            self.perSecond = perSecond
            self.burst = burst
        }
    }

    public var byScope: [Scope: Limit]
    /// Per client address, for requests whose API key failed (`CONSENTD_RATE_LIMIT_FAILED_AUTH`): past it, an
    /// unknown key is refused before it costs a database read.
    public var failedAuthentication = Limit(perSecond: 10, burst: 50)

    /// Checks are the hot path and come in bursts from senders; DPO and admin work is human-paced.
    public static let `default` = RateLimits(byScope: [
        .consentCheck: Limit(perSecond: 5_000, burst: 10_000),
        .consentWrite: Limit(perSecond: 500, burst: 1_000),
        .dpo: Limit(perSecond: 50, burst: 200),
        .admin: Limit(perSecond: 50, burst: 200),
    ])

    public init(byScope: [Scope: Limit]) { self.byScope = byScope }

    public func limit(for scopes: Set<Scope>) -> Limit? {
        scopes.compactMap { byScope[$0] }.max { ($0.perSecond, $0.burst) < ($1.perSecond, $1.burst) }
    }

    public static let failedAuthenticationVariable = "CONSENTD_RATE_LIMIT_FAILED_AUTH"

    public static func variable(for scope: Scope) -> String {
        "CONSENTD_RATE_LIMIT_" + scope.rawValue.uppercased().replacingOccurrences(of: ":", with: "_")
    }
}

extension EnvironmentReader {
    public static func rateLimits(_ environment: [String: String]) throws(ConfigurationError) -> RateLimits {
        var limits = RateLimits.default
        for scope in Scope.allCases {
            if let limit = try limit(environment, RateLimits.variable(for: scope)) { limits.byScope[scope] = limit }
        }
        if let limit = try limit(environment, RateLimits.failedAuthenticationVariable) {
            limits.failedAuthentication = limit
        }
        return limits
    }

    static func limit(_ environment: [String: String], _ name: String) throws(ConfigurationError) -> RateLimits.Limit? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        let parts = text.split(separator: "/")
        guard parts.count == 2, let rate = Double(parts[0]), rate > 0, rate <= 1_000_000, let burst = Int(parts[1]),
            (1...10_000_000).contains(burst)
        else {
            throw ConfigurationError(variable: name, problem: "must be <requests per second>/<burst>, such as 200/400")
        }
        return RateLimits.Limit(perSecond: rate, burst: burst)
    }
}
