import NIOCore

/// Until when the caches may answer, from what the change listener has proved about its connection (issue 21,
/// finding 1). A LISTEN connection only receives, so a flow that died without a FIN looks exactly like a quiet
/// one; the listener therefore proves both halves of what the caches rely on, again and again:
/// - that notifications reach it: a heartbeat NOTIFY it sends through the request pool comes back on its own
///   connection (`heard`). Key revocations travel that way.
/// - that its reads of the change log complete (`readCompleted`): subjects' changes travel that way.
/// The caches answer until `bound` after the older of the two proofs; the first heartbeat turns them on.
///
/// Times are nanoseconds of the monotonic clock (`FeedClock`). A pure value: the listener feeds it events and
/// publishes `freshUntil` to the caches, which compare it with the clock on every lookup.
struct FeedFreshness: Sendable, Equatable {
    let bound: UInt64
    /// Heartbeats sent and not yet heard, by sequence number: when each was sent.
    private(set) var outstanding: [UInt64: UInt64] = [:]
    private var lastHeardSentAt: UInt64?
    private var lastReadStartedAt: UInt64?
    private var lastSequence: UInt64 = 0

    init(bound: UInt64) { self.bound = bound }

    /// Numbers and records the next heartbeat, sent at `time`.
    mutating func nextBeat(at time: UInt64) -> UInt64 {
        lastSequence += 1
        sent(beat: lastSequence, at: time)
        return lastSequence
    }

    mutating func sent(beat sequence: UInt64, at time: UInt64) {
        outstanding[sequence] = time
        // A heartbeat never heard (lost with a connection the pool replaced) is not kept for ever.
        if outstanding.count > 64, let oldest = outstanding.keys.min() { outstanding.removeValue(forKey: oldest) }
    }

    /// A heartbeat came back: every notification committed before it was sent has been delivered.
    mutating func heard(beat sequence: UInt64) {
        guard let sentAt = outstanding[sequence] else { return }
        lastHeardSentAt = max(lastHeardSentAt ?? 0, sentAt)
        outstanding = outstanding.filter { $0.key > sequence }
    }

    /// A read of the change log that began at `start` completed: changes committed before `start` are applied.
    mutating func readCompleted(startedAt start: UInt64) {
        lastReadStartedAt = max(lastReadStartedAt ?? 0, start)
    }

    /// The caches answer while the clock is before this; 0 (never) until both proofs have been made once.
    var freshUntil: UInt64 {
        guard let heard = lastHeardSentAt, let read = lastReadStartedAt else { return 0 }
        return min(heard, read) &+ bound
    }
}

/// The monotonic clock the caches and the listener share, in nanoseconds (NIO's, one vDSO call).
enum FeedClock {
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

/// A heartbeat on the change channel: `beat <listener nonce> <sequence>`. The nonce tells a listener its own
/// beats from other instances', which it ignores.
struct Heartbeat: Sendable, Equatable {
    let nonce: String
    let sequence: UInt64

    var payload: String { "beat \(nonce) \(sequence)" }

    init(nonce: String, sequence: UInt64) {
        self.nonce = nonce
        self.sequence = sequence
    }

    init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 3, parts[0] == "beat", let sequence = UInt64(parts[2]) else { return nil }
        self.init(nonce: String(parts[1]), sequence: sequence)
    }
}
