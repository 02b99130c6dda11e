import Foundation

/// When a failed delivery is tried again: exponential backoff from `firstDelay`, doubled per failure up to
/// `maximumDelay`, each delay drawn at random from its upper half (jitter, so that deliveries that failed together
/// do not all return together); given up only once the first attempt is `giveUpAfter` old and at least
/// `minimumAttempts` were made. The defaults retry for a little over 24 hours (issue 22: "at least 24 hours"):
/// 15 s, 30 s, 1 min, … doubling to 4 h, about 18 attempts.
public struct WebhookRetrySchedule: Sendable, Equatable {
    public var firstDelay: Duration
    public var maximumDelay: Duration
    public var giveUpAfter: Duration
    public var minimumAttempts: Int

    public init(
        firstDelay: Duration = .seconds(15), maximumDelay: Duration = .seconds(4 * 3600),
        giveUpAfter: Duration = .seconds(25 * 3600), minimumAttempts: Int = 8
    ) {
        self.firstDelay = firstDelay
        self.maximumDelay = maximumDelay
        self.giveUpAfter = giveUpAfter
        self.minimumAttempts = minimumAttempts
    }

    public static let standard = WebhookRetrySchedule()

    public enum Decision: Sendable, Equatable {
        case retry(at: Date)
        case giveUp
    }

    /// After attempt number `attempt` (1 for the first) failed at `now`. `unit` is a random draw in 0..<1.
    public func afterFailure(attempt: Int, firstAttemptAt: Date, now: Date, unit: Double) -> Decision {
        if attempt >= minimumAttempts, now.timeIntervalSince(firstAttemptAt) >= giveUpAfter.timeInterval {
            return .giveUp
        }
        let delay = delayCeiling(afterAttempt: attempt)
        let drawn = delay / 2 + delay / 2 * min(max(unit, 0), 1)
        return .retry(at: now.addingTimeInterval(drawn))
    }

    /// The largest delay after the given attempt: `firstDelay` doubled `attempt - 1` times, at most `maximumDelay`.
    public func delayCeiling(afterAttempt attempt: Int) -> TimeInterval {
        let doublings = Double(min(max(attempt - 1, 0), 40))
        return min(firstDelay.timeInterval * pow(2, doublings), maximumDelay.timeInterval)
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        let (seconds, attoseconds) = components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
