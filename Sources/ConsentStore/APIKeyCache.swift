import ConsentCore
import Foundation
import Synchronization

/// The identities behind recently presented API keys, so that a check answered from the check cache needs no
/// database round trip at all. Only live keys are held (an unknown token always asks the database). Revocation is
/// immediate on every instance: the revoking transaction notifies (`KeyRevocation`), the instance that revoked
/// forgets the key before acknowledging, and the cache answers only while the change listener is connected,
/// exactly like the check cache.
public final class APIKeyCache: Sendable {
    struct State {
        var entries: [[UInt8]: CallerIdentity] = [:]
        /// Bumped by every revocation and by every change of listening: an answer read from the database before a
        /// bump may predate a revocation, so it is not kept.
        var generation: UInt64 = 0
        var enabled = false
    }

    public let capacity: Int
    let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity > 0, "a key cache holds at least one key")
        self.capacity = capacity
    }

    /// The cached identity for a token's stored hash, and the generation to hand back to `fill` after a read.
    public func lookup(_ storedHash: [UInt8]) -> (identity: CallerIdentity?, generation: UInt64) {
        state.withLock { state in (state.enabled ? state.entries[storedHash] : nil, state.generation) }
    }

    public func fill(_ storedHash: [UInt8], identity: CallerIdentity, generation: UInt64) {
        state.withLock { state in
            guard state.enabled, state.generation == generation else { return }
            // Keys are few; when a flood of distinct live keys fills the cache, one arbitrary entry makes room.
            if state.entries.count >= capacity, state.entries[storedHash] == nil, let first = state.entries.keys.first {
                state.entries.removeValue(forKey: first)
            }
            state.entries[storedHash] = identity
        }
    }

    public func revoke(keyId: UUID) {
        state.withLock { state in
            state.generation += 1
            state.entries = state.entries.filter { $0.value.keyId != keyId }
        }
    }

    public func setListening(_ listening: Bool) {
        state.withLock { state in
            state.generation += 1
            state.entries.removeAll()
            state.enabled = listening
        }
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
