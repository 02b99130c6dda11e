/// Runs `body`, or fails with `DeadlineExceeded` when it takes longer than `duration`: the pool waits for a
/// database that does not answer, and a start-up check or a readiness probe must answer anyway.
public func withDeadline<Result: Sendable>(
    _ duration: Duration, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else { throw DeadlineExceeded(after: duration) }
        return result
    }
}

public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let after: Duration
    public var description: String { "no answer within \(after)" }
}
