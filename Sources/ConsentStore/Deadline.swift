import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Runs `body`, or fails with `DeadlineExceeded` when it takes longer than `duration`: the pool waits for a
/// database that does not answer, and a request, a start-up check or a readiness probe must answer anyway.
///
/// The timer is an event loop's scheduled task, which cancelling removes. A `Task.sleep` would not do on the
/// request path: on Linux a cancelled sleep leaves its dispatch timer queued until it would have fired, so at
/// thousands of requests a second a 30 s deadline kept some 200,000 timers alive (150 MB more RSS with a million
/// cached subjects; docs/benchmarks.md).
public func withDeadline<Result: Sendable>(
    _ duration: Duration, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let work = Task { try await body() }
    let expired = NIOLockedValueBox(false)
    let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(duration)) {
        expired.withLockedValue { $0 = true }
        work.cancel()
    }
    defer { timer.cancel() }
    do {
        // The caller's cancellation reaches the work too; `work` always ends before this function returns.
        return try await withTaskCancellationHandler {
            try await work.value
        } onCancel: {
            work.cancel()
        }
    } catch  where expired.withLockedValue({ $0 }) {
        throw DeadlineExceeded(after: duration)
    }
}

public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let after: Duration
    public var description: String { "no answer within \(after)" }
}
