import ConsentCore
import Foundation
import Synchronization

/// The check path's in-process cache: for each subject a check has asked about, the state that decides each purpose
/// asked for (or that the tenant does not know the subject at all), as the database last answered.
///
/// What it holds is only what `app_consent_states` returns: the subject id, the deciding consent (granted with its
/// time, pending, or withdrawn with its time) and the time of the last inbound message. Everything time-dependent
/// is decided at check time from those (the 24-hour window), so an entry never goes stale by the clock alone.
/// Every change to a subject (opt-in, withdrawal, message, erasure) invalidates the subject's entry: locally before
/// the write is acknowledged, on other instances from the change log (`ConsentChangeListener`).
///
/// Correctness rests on three rules:
/// - A fill is refused when the subject was invalidated after the fill's database read began (each lookup hands
///   out a ticket; invalidations leave a tombstone with a later ticket), so a read that raced a write never
///   re-inserts the old state.
/// - An entry remembers the change position it is known to include (`covered`); a check whose consistency token is
///   newer reads through.
/// - Without a live change feed the cache answers nothing, and it is emptied when the feed (re)starts, because
///   changes missed meanwhile are not replayed.
public final class ConsentStateCache: Sendable {
    public struct Key: Hashable, Sendable {
        public let tenantId: UUID
        public let channel: MessageChannel
        /// The 32-byte blind index held inline: a million keys then cost no million heap arrays, and hashing takes
        /// four words instead of 32 bytes one by one.
        let index: (UInt64, UInt64, UInt64, UInt64)

        public init(tenantId: UUID, channel: MessageChannel, blindIndex: [UInt8]) {
            precondition(blindIndex.count == 32, "a blind index has 32 bytes")
            self.tenantId = tenantId
            self.channel = channel
            index = blindIndex.withUnsafeBytes { raw in
                (
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                    UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
                )
            }
        }

        public var blindIndex: [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 32)
            bytes.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: index.0.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: index.1.bigEndian, toByteOffset: 8, as: UInt64.self)
                raw.storeBytes(of: index.2.bigEndian, toByteOffset: 16, as: UInt64.self)
                raw.storeBytes(of: index.3.bigEndian, toByteOffset: 24, as: UInt64.self)
            }
            return bytes
        }

        public static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.index == rhs.index && lhs.tenantId == rhs.tenantId && lhs.channel == rhs.channel
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(index.0)
            hasher.combine(index.1)
            hasher.combine(index.2)
            hasher.combine(index.3)
            hasher.combine(tenantId)
            hasher.combine(channel)
        }
    }

    /// One subject's states by purpose. Nearly every sender asks about one purpose, so the first is held inline and
    /// only further purposes take a dictionary.
    struct PurposeStates {
        let first: String
        var firstState: SubjectConsentState?
        var others: [String: SubjectConsentState?]?

        init(_ purpose: String, _ state: SubjectConsentState?) {
            first = purpose
            firstState = state
        }

        /// nil when this purpose was never read; `.some(nil)` when the tenant does not know the subject.
        subscript(purpose: String) -> SubjectConsentState?? {
            get { purpose == first ? .some(firstState) : others?[purpose] }
            set {
                guard let newValue else { return }
                if purpose == first {
                    firstState = newValue
                } else {
                    others = (others ?? [:]).merging([purpose: newValue]) { $1 }
                }
            }
        }
    }

    public struct Statistics: Sendable, Equatable {
        public var hits = 0
        public var misses = 0
        public var evictions = 0
        public var invalidations = 0
        public var entries = 0
    }

    enum Slot {
        /// Per purpose: the subject's state, or nil when the tenant does not know the subject. `since` is the
        /// ticket of the last invalidation before these were read: an older read may not add to them.
        case states(PurposeStates, covered: Int64, since: UInt64)
        case tombstone(ticket: UInt64, position: Int64)
    }

    struct Entry {
        var slot: Slot
        var referenced: Bool
        var clockIndex: Int
    }

    struct State {
        var entries: [Key: Entry] = [:]
        /// The CLOCK ring: second-chance eviction, close to LRU at O(1) per insertion. Grows up to the capacity.
        var ring: [Key?] = []
        var hand = 0
        var ticket: UInt64 = 0
        /// Fills whose ticket is older than this are refused: a tombstone they would need was evicted, or the cache
        /// was emptied after they began.
        var floor: UInt64 = 0
        var enabled = false
        /// `FeedClock` time until which the change feed has proved itself (`FeedFreshness`): past it, lookups miss.
        var freshUntil: UInt64 = 0
        var statistics = Statistics()
    }

    public let capacity: Int
    let state: Mutex<State>

    public init(capacity: Int) {
        precondition(capacity > 0, "a cache holds at least one subject")
        self.capacity = capacity
        self.state = Mutex(State())
    }

    /// What a lookup found: the states of the subjects that were cached, and a ticket for filling the rest.
    public struct Lookup: Sendable {
        public let found: [Key: SubjectConsentState?]
        public let ticket: UInt64
    }

    /// The cached state of each key for `purpose`, when the entry covers `minimumPosition`.
    public func lookup(_ keys: some Collection<Key>, purpose: String, minimumPosition: Int64 = 0) -> Lookup {
        let now = FeedClock.now()
        return state.withLock { state in
            state.ticket += 1
            var found: [Key: SubjectConsentState?] = [:]
            found.reserveCapacity(keys.count)
            guard state.enabled, now < state.freshUntil else {
                state.statistics.misses += keys.count
                return Lookup(found: [:], ticket: state.ticket)
            }
            for key in keys {
                guard var entry = state.entries[key], case .states(let states, let covered, _) = entry.slot,
                    covered >= minimumPosition, let value = states[purpose]
                else {
                    state.statistics.misses += 1
                    continue
                }
                found[key] = value
                entry.referenced = true
                state.entries[key] = entry
                state.statistics.hits += 1
            }
            return Lookup(found: found, ticket: state.ticket)
        }
    }

    /// Stores what the database answered for a lookup's misses, unless the subject changed since the lookup.
    public func fill(_ answers: [Key: SubjectConsentState?], purpose: String, ticket: UInt64, covered: Int64) {
        state.withLock { state in
            guard state.enabled, ticket >= state.floor else { return }
            for (key, value) in answers {
                if var entry = state.entries[key] {
                    switch entry.slot {
                    case .tombstone(let invalidated, let position):
                        guard invalidated < ticket else { continue }
                        entry.slot = .states(
                            PurposeStates(purpose, value), covered: max(covered, position), since: invalidated)
                    case .states(var states, let previous, let since):
                        // Purposes read at different times share an entry only when no change came between: both
                        // reads began after the last invalidation.
                        guard since < ticket else { continue }
                        states[purpose] = value
                        entry.slot = .states(states, covered: min(previous, covered), since: since)
                    }
                    entry.referenced = true
                    state.entries[key] = entry
                } else {
                    let index = Self.freeSlot(&state, capacity: capacity)
                    state.ring[index] = key
                    state.entries[key] = Entry(
                        slot: .states(PurposeStates(purpose, value), covered: covered, since: state.floor),
                        referenced: false,
                        clockIndex: index)
                }
            }
            state.statistics.entries = state.entries.count
        }
    }

    /// Forgets the subject: a change at `position` was committed.
    public func invalidate(_ key: Key, position: Int64) {
        state.withLock { state in
            state.ticket += 1
            state.statistics.invalidations += 1
            guard state.enabled else { return }
            if var entry = state.entries[key] {
                var latest = position
                if case .tombstone(_, let earlier) = entry.slot { latest = max(earlier, position) }
                entry.slot = .tombstone(ticket: state.ticket, position: latest)
                state.entries[key] = entry
            } else {
                let index = Self.freeSlot(&state, capacity: capacity)
                state.ring[index] = key
                state.entries[key] = Entry(
                    slot: .tombstone(ticket: state.ticket, position: position), referenced: false, clockIndex: index)
            }
            state.statistics.entries = state.entries.count
        }
    }

    /// Turns the cache on (a notification connection is listening) or off (it is not). Either way the cache is
    /// emptied: changes missed while no one listened must not be answered from memory. On, it answers only until
    /// `freshUntil` (`FeedClock`), which the listener moves on each time it proves its feed alive.
    public func setListening(_ listening: Bool, freshUntil: UInt64) {
        state.withLock { state in
            state.freshUntil = listening ? freshUntil : 0
            state.ticket += 1
            state.floor = state.ticket
            state.entries.removeAll(keepingCapacity: true)
            state.ring = []
            state.hand = 0
            state.enabled = listening
            state.statistics.entries = 0
        }
    }

    public var statistics: Statistics { state.withLock { $0.statistics } }

    /// Moves on the time until which lookups may answer: the listener proved its feed alive again.
    public func extendFreshness(until time: UInt64) {
        state.withLock { state in if state.enabled { state.freshUntil = time } }
    }

    /// Whether a notification connection is listening and has proved itself lately, so that the cache answers.
    public var isListening: Bool {
        let now = FeedClock.now()
        return state.withLock { $0.enabled && now < $0.freshUntil }
    }

    /// A free ring slot, evicting by CLOCK when full. An evicted tombstone raises the floor.
    static func freeSlot(_ state: inout State, capacity: Int) -> Int {
        // The ring grows with the cache, so a large capacity costs nothing until it is used.
        if state.ring.count < capacity {
            state.ring.append(nil)
            return state.ring.count - 1
        }
        while true {
            let index = state.hand
            state.hand = (state.hand + 1) % capacity
            guard let key = state.ring[index], let entry = state.entries[key] else { return index }
            if entry.referenced {
                state.entries[key]?.referenced = false
                continue
            }
            if case .tombstone(let ticket, _) = entry.slot { state.floor = max(state.floor, ticket) }
            state.entries[key] = nil
            state.ring[index] = nil
            state.statistics.evictions += 1
            return index
        }
    }
}
