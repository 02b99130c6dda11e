import ConsentCore
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// One token bucket per API key, per instance. A flooding key empties its own bucket and nobody else's: the
/// buckets are independent, and a refused request costs a dictionary lookup, no database work.
final class KeyRateLimiter: Sendable {
    let limits: RateLimits
    let buckets = Mutex<[UUID: TokenBucket]>([:])
    /// Keys tracked at most; past it, buckets that have refilled completely (idle keys) are dropped.
    static let maxKeys = 100_000

    init(limits: RateLimits) { self.limits = limits }

    func take(_ caller: CallerIdentity, now: TimeInterval = ProcessInfo.processInfo.systemUptime)
        -> TokenBucket.Decision
    {
        guard let keyId = caller.keyId, let limit = limits.limit(for: caller.scopes) else { return .allowed }
        return buckets.withLock { buckets in
            if buckets.count >= Self.maxKeys, buckets[keyId] == nil {
                buckets = buckets.filter { _, bucket in bucket.available(at: now) < bucket.capacity }
            }
            var bucket = buckets[keyId] ?? TokenBucket(capacity: limit.burst, ratePerSecond: limit.perSecond, now: now)
            let decision = bucket.take(now: now)
            buckets[keyId] = bucket
            return decision
        }
    }
}

/// 429 with `Retry-After` (whole seconds, rounded up) once a key has used its burst.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let limiter: KeyRateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let caller = context.identity, case .limited(let wait) = limiter.take(caller) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw APIError(
                .tooManyRequests, code: "rate_limited",
                message: "this API key has used its request allowance; retry after \(seconds) s",
                headers: [HTTPField.Name("Retry-After")!: String(seconds)])
        }
        return try await next(request, context)
    }
}

/// Before authentication: one token bucket per client address, taken from by each request whose API key failed
/// (malformed, unknown or revoked). An address that has used its allowance is refused with 429 before its next
/// unknown key costs a database read; keys already in the key cache still pass, so a neighbour behind the same
/// address with a good key is not shut out by a flood of bad ones (issue 21, finding 4).
final class FailedAuthenticationLimiter: Sendable {
    let limit: RateLimits.Limit
    let buckets = Mutex<[String: TokenBucket]>([:])
    static let maxAddresses = 100_000

    init(limit: RateLimits.Limit) { self.limit = limit }

    /// Whether the address may cost a database read now.
    func mayTry(_ address: String, now: TimeInterval = ProcessInfo.processInfo.systemUptime) -> Bool {
        buckets.withLock { $0[address].map { $0.available(at: now) >= 1 } ?? true }
    }

    func failed(_ address: String, now: TimeInterval = ProcessInfo.processInfo.systemUptime) {
        buckets.withLock { buckets in
            if buckets.count >= Self.maxAddresses, buckets[address] == nil {
                buckets = buckets.filter { _, bucket in bucket.available(at: now) < bucket.capacity }
                if buckets.count >= Self.maxAddresses, let first = buckets.keys.first {
                    buckets.removeValue(forKey: first)
                }
            }
            var bucket =
                buckets[address] ?? TokenBucket(capacity: limit.burst, ratePerSecond: limit.perSecond, now: now)
            _ = bucket.take(now: now)
            buckets[address] = bucket
        }
    }
}
