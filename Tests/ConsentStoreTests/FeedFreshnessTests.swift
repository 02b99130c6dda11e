import Testing

@testable import ConsentStore

/// When the caches may answer, from the listener's proofs (issue 21, finding 1). Times in nanoseconds.
@Suite struct FeedFreshnessTests {
    @Test func offUntilBothAHeartbeatAndARead() {
        var freshness = FeedFreshness(bound: 3_000)
        #expect(freshness.freshUntil == 0)
        freshness.readCompleted(startedAt: 100)
        #expect(freshness.freshUntil == 0, "a read alone does not prove notifications arrive")
        freshness.sent(beat: 1, at: 200)
        #expect(freshness.freshUntil == 0, "a heartbeat sent but not heard proves nothing")
        freshness.heard(beat: 1)
        #expect(freshness.freshUntil == 3_100, "the older proof bounds: the read began at 100")
    }

    @Test func theOlderProofBounds() {
        var freshness = FeedFreshness(bound: 3_000)
        freshness.sent(beat: 1, at: 1_000)
        freshness.heard(beat: 1)
        freshness.readCompleted(startedAt: 5_000)
        #expect(freshness.freshUntil == 4_000, "reads go on, but the last heartbeat heard was sent at 1000")
        freshness.sent(beat: 2, at: 6_000)
        freshness.heard(beat: 2)
        #expect(freshness.freshUntil == 8_000)
    }

    @Test func aHeartbeatHeardLateOrTwiceNeverMovesBack() {
        var freshness = FeedFreshness(bound: 10)
        freshness.readCompleted(startedAt: 1_000)
        freshness.sent(beat: 1, at: 100)
        freshness.sent(beat: 2, at: 200)
        freshness.heard(beat: 2)
        #expect(freshness.freshUntil == 210)
        freshness.heard(beat: 1)
        freshness.heard(beat: 2)
        #expect(freshness.freshUntil == 210, "beat 1 was dropped when 2 was heard; 2 again changes nothing")
        freshness.heard(beat: 99)
        #expect(freshness.freshUntil == 210, "a beat never sent (another listener's) proves nothing")
        freshness.readCompleted(startedAt: 50)
        #expect(freshness.freshUntil == 210, "an older read does not move it back")
    }

    @Test func heartbeatsAreNumberedInOrder() {
        var freshness = FeedFreshness(bound: 10)
        #expect(freshness.nextBeat(at: 5) == 1)
        #expect(freshness.nextBeat(at: 6) == 2)
        freshness.readCompleted(startedAt: 100)
        freshness.heard(beat: 2)
        #expect(freshness.freshUntil == 16)
    }

    @Test func unheardHeartbeatsAreBounded() {
        var freshness = FeedFreshness(bound: 10)
        for sequence in 1...500 { freshness.sent(beat: UInt64(sequence), at: UInt64(sequence)) }
        #expect(freshness.outstanding.count <= 65)
        #expect(freshness.outstanding[500] == 500)
    }

    @Test func heartbeatPayloadsRoundTripAndOthersAreNotOnes() {
        let beat = Heartbeat(nonce: "k3x9", sequence: 42)
        #expect(Heartbeat(payload: beat.payload) == beat)
        #expect(Heartbeat(payload: "") == nil)
        #expect(Heartbeat(payload: "key 5C8E2D5B-0000-4000-8000-000000000000") == nil)
        #expect(Heartbeat(payload: "beat k3x9") == nil)
        #expect(Heartbeat(payload: "beat k3x9 -1") == nil)
    }
}
