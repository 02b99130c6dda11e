import ConsentCore
import Foundation
import Synchronization

/// The identities behind recently presented API keys, so that a check answered from the check cache needs no
/// database round trip at all. Revocation is immediate on every instance: the revoking transaction notifies
/// (`KeyRevocation`), the instance that revoked forgets the key before acknowledging, and the cache answers only
/// while the change listener has lately proved that notifications reach it (`FeedFreshness`), exactly like the
/// check cache. As a second bound, independent of the listener, an entry is forgotten `entryLifetime` after it was
/// read (issue 21, finding 1).
///
/// It also remembers, briefly, hashes the database did not know: a flood of made-up keys with valid checksums then
/// costs one read per distinct key per `unknownLifetime`, not one per request (finding 4). A key created meanwhile
/// cannot be among them: its token is random and was never presented before it existed.
public final class APIKeyCache: Sendable {
    struct Entry {
        let identity: CallerIdentity
        let readAt: UInt64
    }

    struct State {
        var entries: [[UInt8]: Entry] = [:]
        var unknown: [[UInt8]: UInt64] = [:]
        /// Bumped by every revocation and by every change of listening: an answer read from the database before a
        /// bump may predate a revocation, so it is not kept.
        var generation: UInt64 = 0
        var enabled = false
        var freshUntil: UInt64 = 0
    }

    public let capacity: Int
    let entryLifetime: UInt64
    let unknownLifetime: UInt64
    let state = Mutex(State())

    public init(capacity: Int, entryLifetime: Duration = .seconds(60), unknownLifetime: Duration = .seconds(10)) {
        precondition(capacity > 0, "a key cache holds at least one key")
        self.capacity = capacity
        self.entryLifetime = UInt64(entryLifetime.components.seconds) * 1_000_000_000
        self.unknownLifetime = UInt64(unknownLifetime.components.seconds) * 1_000_000_000
    }

    /// The cached identity for a token's stored hash, and the generation to hand back to `fill` after a read.
    public func lookup(_ storedHash: [UInt8]) -> (identity: CallerIdentity?, generation: UInt64) {
        let now = FeedClock.now()
        return state.withLock { state in
            guard state.enabled, now < state.freshUntil, let entry = state.entries[storedHash] else {
                return (nil, state.generation)
            }
            guard now &- entry.readAt < entryLifetime else {
                state.entries.removeValue(forKey: storedHash)
                return (nil, state.generation)
            }
            return (entry.identity, state.generation)
        }
    }

    public func fill(_ storedHash: [UInt8], identity: CallerIdentity, generation: UInt64) {
        let now = FeedClock.now()
        state.withLock { state in
            guard state.enabled, state.generation == generation else { return }
            // Keys are few; when a flood of distinct live keys fills the cache, one arbitrary entry makes room.
            if state.entries.count >= capacity, state.entries[storedHash] == nil, let first = state.entries.keys.first {
                state.entries.removeValue(forKey: first)
            }
            state.entries[storedHash] = Entry(identity: identity, readAt: now)
        }
    }

    /// Whether the database said lately that it does not know this hash.
    public func isKnownUnknown(_ storedHash: [UInt8]) -> Bool {
        let now = FeedClock.now()
        return state.withLock { state in
            guard let seen = state.unknown[storedHash] else { return false }
            if now &- seen < unknownLifetime { return true }
            state.unknown.removeValue(forKey: storedHash)
            return false
        }
    }

    public func rememberUnknown(_ storedHash: [UInt8]) {
        let now = FeedClock.now()
        state.withLock { state in
            if state.unknown.count >= capacity {
                state.unknown = state.unknown.filter { now &- $0.value < unknownLifetime }
                if state.unknown.count >= capacity, let first = state.unknown.keys.first {
                    state.unknown.removeValue(forKey: first)
                }
            }
            state.unknown[storedHash] = now
        }
    }

    public func revoke(keyId: UUID) {
        state.withLock { state in
            state.generation += 1
            state.entries = state.entries.filter { $0.value.identity.keyId != keyId }
        }
    }

    /// On (answering until `freshUntil`, `FeedClock`) or off with the change feed; emptied either way.
    public func setListening(_ listening: Bool, freshUntil: UInt64) {
        state.withLock { state in
            state.generation += 1
            state.entries.removeAll()
            state.enabled = listening
            state.freshUntil = listening ? freshUntil : 0
        }
    }

    public func extendFreshness(until time: UInt64) {
        state.withLock { state in if state.enabled { state.freshUntil = time } }
    }

    public var count: Int { state.withLock { $0.entries.count } }
}

/// A committed revocation of an API key, as NOTIFY carries it on the change channel: `key <key id>`.
public struct KeyRevocation: Sendable, Equatable {
    public let keyId: UUID

    public init(keyId: UUID) { self.keyId = keyId }

    public var payload: String { "key \(keyId.lowercased)" }

    public init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 2, parts[0] == "key", let id = UUID(uuidString: String(parts[1])) else { return nil }
        self.init(keyId: id)
    }
}
