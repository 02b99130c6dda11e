import ConsentCore
import Foundation
import Testing

@testable import ConsentStore

@Suite struct ConsentStateCacheTests {
    static func key(_ n: UInt8, tenant: UUID = UUID(uuidString: "00000000-0000-0000-0000-000000000001")!)
        -> ConsentStateCache.Key
    {
        ConsentStateCache.Key(tenantId: tenant, channel: .whatsapp, blindIndex: Array(repeating: n, count: 32))
    }

    static func granted(_ n: Int) -> SubjectConsentState {
        SubjectConsentState(
            subjectId: UUID(), consent: .granted(id: UUID(), grantedAt: Date(timeIntervalSince1970: Double(n))),
            lastInboundAt: nil, entryPointAt: nil, marketingStoppedAt: nil, consentCollectedAt: nil)
    }

    static func listening(_ capacity: Int = 8) -> ConsentStateCache {
        let cache = ConsentStateCache(capacity: capacity)
        cache.setListening(true, freshUntil: .max)
        return cache
    }

    @Test func answersWhatWasFilledPerPurposeIncludingUnknownSubjects() {
        let cache = Self.listening()
        let (a, b) = (Self.key(1), Self.key(2))
        let first = cache.lookup([a, b], purpose: "marketing")
        #expect(first.found.isEmpty)
        let state = Self.granted(1)
        cache.fill([a: state, b: nil], purpose: "marketing", ticket: first.ticket, covered: 0)
        let second = cache.lookup([a, b], purpose: "marketing")
        #expect(second.found.count == 2)
        #expect(second.found[a] == .some(state))
        #expect(second.found[b] == .some(nil), "an unknown subject is cached as unknown")
        #expect(cache.lookup([a], purpose: "shipping_update").found.isEmpty, "another purpose is a miss")
        #expect(cache.statistics.hits == 2 && cache.statistics.misses == 3)
    }

    @Test func answersNothingUntilListeningAndForgetsOnEveryChangeOfConnection() {
        let cache = ConsentStateCache(capacity: 8)
        let a = Self.key(1)
        let before = cache.lookup([a], purpose: "marketing")
        cache.fill([a: Self.granted(1)], purpose: "marketing", ticket: before.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing").found.isEmpty, "not listening: no answers, no fills")
        cache.setListening(true, freshUntil: .max)
        let ticket = cache.lookup([a], purpose: "marketing").ticket
        cache.fill([a: Self.granted(1)], purpose: "marketing", ticket: ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing").found.count == 1)
        cache.setListening(false, freshUntil: 0)
        cache.setListening(true, freshUntil: .max)
        #expect(cache.lookup([a], purpose: "marketing").found.isEmpty, "reconnected: emptied")
        // A read that began before the reconnection may not fill after it.
        cache.fill([a: Self.granted(1)], purpose: "marketing", ticket: ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing").found.isEmpty)
    }

    @Test func aReadThatRacedAWriteNeverReinsertsTheOldState() {
        let cache = Self.listening()
        let a = Self.key(1)
        let stale = cache.lookup([a], purpose: "marketing")  // the read begins
        cache.invalidate(a, position: 7)  // a withdrawal commits meanwhile
        cache.fill([a: Self.granted(1)], purpose: "marketing", ticket: stale.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing").found.isEmpty, "the raced fill was refused")
        let fresh = cache.lookup([a], purpose: "marketing")
        cache.fill([a: nil], purpose: "marketing", ticket: fresh.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing").found[a] == .some(nil))
        // The same for a second purpose added to an existing entry by a read older than its invalidation.
        let old = cache.lookup([a], purpose: "shipping_update")
        cache.invalidate(a, position: 8)
        let newer = cache.lookup([a], purpose: "marketing")
        cache.fill([a: nil], purpose: "marketing", ticket: newer.ticket, covered: 0)
        cache.fill([a: Self.granted(2)], purpose: "shipping_update", ticket: old.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "shipping_update").found.isEmpty)
    }

    @Test func aTokenNewerThanTheEntryReadsThrough() {
        let cache = Self.listening()
        let a = Self.key(1)
        let t = cache.lookup([a], purpose: "marketing").ticket
        cache.fill([a: Self.granted(1)], purpose: "marketing", ticket: t, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing", minimumPosition: 5).found.isEmpty)
        // After the change's notification, a fill covers its position.
        cache.invalidate(a, position: 5)
        let after = cache.lookup([a], purpose: "marketing", minimumPosition: 5)
        cache.fill([a: nil], purpose: "marketing", ticket: after.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "marketing", minimumPosition: 5).found.count == 1)
        #expect(cache.lookup([a], purpose: "marketing", minimumPosition: 6).found.isEmpty)
        // A read-through with a token covers that token.
        let through = cache.lookup([a], purpose: "marketing", minimumPosition: 9)
        cache.invalidate(a, position: 9)
        let again = cache.lookup([a], purpose: "marketing", minimumPosition: 9)
        cache.fill([a: nil], purpose: "marketing", ticket: again.ticket, covered: 9)
        #expect(cache.lookup([a], purpose: "marketing", minimumPosition: 9).found.count == 1)
        _ = through
    }

    @Test func keysHoldTheBlindIndexInlineAndGiveItBack() {
        let bytes = (0..<32).map { UInt8($0 * 7 + 3) }
        let tenant = UUID()
        let key = ConsentStateCache.Key(tenantId: tenant, channel: .sms, blindIndex: bytes)
        #expect(key.blindIndex == bytes)
        #expect(key == ConsentStateCache.Key(tenantId: tenant, channel: .sms, blindIndex: bytes))
        var other = bytes
        other[31] ^= 1
        #expect(key != ConsentStateCache.Key(tenantId: tenant, channel: .sms, blindIndex: other))
        #expect(key != ConsentStateCache.Key(tenantId: tenant, channel: .email, blindIndex: bytes))
        #expect(key != ConsentStateCache.Key(tenantId: UUID(), channel: .sms, blindIndex: bytes))
    }

    /// Purposes read by different checks share the subject's entry; each answers for itself.
    @Test func severalPurposesOfOneSubject() {
        let cache = Self.listening()
        let state = Self.granted(1)
        for (purpose, value) in [("marketing", state as SubjectConsentState?), ("surveys", nil), ("offers", state)] {
            let t = cache.lookup([Self.key(1)], purpose: purpose).ticket
            cache.fill([Self.key(1): value], purpose: purpose, ticket: t, covered: 0)
        }
        #expect(cache.lookup([Self.key(1)], purpose: "marketing").found[Self.key(1)] == .some(state))
        #expect(cache.lookup([Self.key(1)], purpose: "surveys").found[Self.key(1)] == .some(nil))
        #expect(cache.lookup([Self.key(1)], purpose: "offers").found[Self.key(1)] == .some(state))
        #expect(cache.lookup([Self.key(1)], purpose: "billing").found.isEmpty, "never read")
        #expect(cache.statistics.entries == 1)
    }

    @Test func staysWithinItsCapacityEvictingTheLeastRecentlyReferenced() {
        let cache = Self.listening(4)
        for n: UInt8 in 1...4 {
            let t = cache.lookup([Self.key(n)], purpose: "p").ticket
            cache.fill([Self.key(n): nil], purpose: "p", ticket: t, covered: 0)
        }
        #expect(cache.lookup([Self.key(1), Self.key(2)], purpose: "p").found.count == 2)  // 1 and 2 referenced
        let t = cache.lookup([Self.key(5)], purpose: "p").ticket
        cache.fill([Self.key(5): nil], purpose: "p", ticket: t, covered: 0)
        #expect(cache.statistics.entries == 4 && cache.statistics.evictions == 1)
        #expect(cache.lookup([Self.key(3)], purpose: "p").found.isEmpty, "3 was neither referenced nor recent")
        #expect(cache.lookup([Self.key(1), Self.key(2), Self.key(4), Self.key(5)], purpose: "p").found.count == 4)
        for n: UInt8 in 6...40 {
            let t = cache.lookup([Self.key(n)], purpose: "p").ticket
            cache.fill([Self.key(n): nil], purpose: "p", ticket: t, covered: 0)
        }
        #expect(cache.statistics.entries == 4)
    }

    @Test func anEvictedTombstoneStillStopsTheReadItRaced() {
        let cache = Self.listening(2)
        let a = Self.key(1)
        let stale = cache.lookup([a], purpose: "p")
        cache.invalidate(a, position: 3)
        // Two other subjects push a's tombstone out.
        for n: UInt8 in 2...4 {
            let t = cache.lookup([Self.key(n)], purpose: "p").ticket
            cache.fill([Self.key(n): nil], purpose: "p", ticket: t, covered: 0)
        }
        cache.fill([a: Self.granted(1)], purpose: "p", ticket: stale.ticket, covered: 0)
        #expect(cache.lookup([a], purpose: "p").found.isEmpty)
    }
}

@Suite struct APIKeyCacheRuleTests {
    let aliceKey = UUID()
    var alice: CallerIdentity { CallerIdentity(keyId: aliceKey, tenantId: tenant, scopes: [.consentCheck]) }
    let tenant = UUID()
    let hash = Array(repeating: UInt8(7), count: 32)

    @Test func answersOnlyWhileListening() {
        let cache = APIKeyCache(capacity: 4)
        cache.fill(hash, identity: alice, generation: cache.lookup(hash).generation)
        #expect(cache.lookup(hash).identity == nil, "not listening: nothing kept")
        cache.setListening(true, freshUntil: .max)
        cache.fill(hash, identity: alice, generation: cache.lookup(hash).generation)
        #expect(cache.lookup(hash).identity == alice)
        cache.setListening(false, freshUntil: 0)
        #expect(cache.lookup(hash).identity == nil, "a lost connection empties the cache")
    }

    /// A read that began before a revocation may have seen the key live; its answer must not be kept.
    @Test func aReadOlderThanARevocationIsNotKept() {
        let cache = APIKeyCache(capacity: 4)
        cache.setListening(true, freshUntil: .max)
        let before = cache.lookup(hash).generation
        cache.revoke(keyId: aliceKey)
        cache.fill(hash, identity: alice, generation: before)
        #expect(cache.lookup(hash).identity == nil)
        cache.fill(hash, identity: alice, generation: cache.lookup(hash).generation)
        #expect(cache.lookup(hash).identity == alice)
        cache.revoke(keyId: aliceKey)
        #expect(cache.lookup(hash).identity == nil)
    }

    /// Issue 21, finding 1: a listener that stopped proving its feed leaves entries in place, but none answers.
    @Test func answersOnlyWhileTheFeedIsFresh() {
        let cache = APIKeyCache(capacity: 4)
        cache.setListening(true, freshUntil: FeedClock.now() + 60_000_000_000)
        cache.fill(hash, identity: alice, generation: cache.lookup(hash).generation)
        #expect(cache.lookup(hash).identity == alice)
        cache.extendFreshness(until: FeedClock.now())
        #expect(cache.lookup(hash).identity == nil, "past the freshness bound: the database answers")
        cache.extendFreshness(until: .max)
        #expect(cache.lookup(hash).identity == alice, "proved alive again, with nothing missed in between")
    }

    /// An entry lives `entryLifetime` whatever the listener says: a second bound on a missed revocation.
    @Test func entriesExpire() {
        let cache = APIKeyCache(capacity: 4, entryLifetime: .zero)
        cache.setListening(true, freshUntil: .max)
        cache.fill(hash, identity: alice, generation: cache.lookup(hash).generation)
        #expect(cache.lookup(hash).identity == nil)
        let kept = APIKeyCache(capacity: 4, entryLifetime: .seconds(60))
        kept.setListening(true, freshUntil: .max)
        kept.fill(hash, identity: alice, generation: kept.lookup(hash).generation)
        #expect(kept.lookup(hash).identity == alice)
    }

    @Test func unknownHashesAreRememberedBrieflyAndBounded() {
        let cache = APIKeyCache(capacity: 2, unknownLifetime: .seconds(60))
        #expect(!cache.isKnownUnknown(hash))
        cache.rememberUnknown(hash)
        #expect(cache.isKnownUnknown(hash), "no listener needed: an unknown hash stays unknown")
        for n in 0..<5 { cache.rememberUnknown(Array(repeating: UInt8(100 + n), count: 32)) }
        #expect(cache.state.withLock { $0.unknown.count } <= 2)
        let brief = APIKeyCache(capacity: 2, unknownLifetime: .zero)
        brief.rememberUnknown(hash)
        #expect(!brief.isKnownUnknown(hash), "forgotten after its lifetime")
    }

    @Test func staysWithinCapacity() {
        let cache = APIKeyCache(capacity: 3)
        cache.setListening(true, freshUntil: .max)
        for n in 0..<10 {
            let identity = CallerIdentity(keyId: UUID(), tenantId: UUID(), scopes: [.admin])
            cache.fill(
                Array(repeating: UInt8(n), count: 32), identity: identity, generation: cache.lookup([]).generation)
        }
        #expect(cache.count == 3)
    }

    @Test func revocationPayloadsRoundTripAndTheWakeUpIsNotOne() {
        let revocation = KeyRevocation(keyId: aliceKey)
        #expect(KeyRevocation(payload: revocation.payload) == revocation)
        #expect(KeyRevocation(payload: "") == nil, "the change announcer's payload-free NOTIFY")
        #expect(KeyRevocation(payload: "key not-a-uuid") == nil)
    }
}

/// The cached state keeps the rare platform times behind one reference, and keeps them all.
@Suite struct SubjectConsentStateTests {
    @Test func theRareTimesAreKeptWhenPresentAndTheCollectionTimeOnlyWithAStop() {
        let (id, consentId, now) = (UUID(), UUID(), Date(timeIntervalSince1970: 1_796_000_000))
        let consent = ConsentState.granted(id: consentId, grantedAt: now)
        let plain = SubjectConsentState(
            subjectId: id, consent: consent, lastInboundAt: now, entryPointAt: nil, marketingStoppedAt: nil,
            consentCollectedAt: now)
        #expect(plain.consentCollectedAt == nil && plain.facts.consentCollectedAt == nil)
        let stopped = SubjectConsentState(
            subjectId: id, consent: consent, lastInboundAt: now, entryPointAt: now.addingTimeInterval(-5),
            marketingStoppedAt: now.addingTimeInterval(-10), consentCollectedAt: now.addingTimeInterval(-20))
        #expect(
            stopped.facts
                == SubjectFacts(
                    consent: consent, lastInboundAt: now, entryPointAt: now.addingTimeInterval(-5),
                    marketingStoppedAt: now.addingTimeInterval(-10), consentCollectedAt: now.addingTimeInterval(-20)))
        #expect(stopped != plain)
        #expect(
            stopped
                == SubjectConsentState(
                    subjectId: id, consent: consent, lastInboundAt: now, entryPointAt: now.addingTimeInterval(-5),
                    marketingStoppedAt: now.addingTimeInterval(-10), consentCollectedAt: now.addingTimeInterval(-20)))
    }
}
