import Logging
import PostgresNIO
import Synchronization

extension PostgresConnection {
    /// A query on a connection this instance holds for a long time (a leader's lock, the change feed), which the
    /// server may close at any moment: fails when the connection closes instead of waiting forever. postgres-nio
    /// 1.33 writes a query to a closed connection's torn-down pipeline without a promise, so its answer never comes
    /// (found by killing a leader's backend with `pg_terminate_backend`: the leader stopped leading and the service
    /// then never shut down). Checking `isClosed` first was not enough under load: the close can land between the
    /// check and the write. So the query races the connection's close; a query left waiting is abandoned.
    func heldQuery(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        guard !isClosed else { throw HeldConnectionClosed() }
        let answer = OneAnswer()
        return try await withCheckedThrowingContinuation { continuation in
            answer.expect(continuation)
            closeFuture.whenComplete { _ in answer.give(.failure(HeldConnectionClosed())) }
            Task {
                do {
                    answer.give(.success(try await self.query(query, logger: logger)))
                } catch {
                    answer.give(.failure(error))
                }
            }
        }
    }
}

/// The server closed a held connection (`heldQuery`).
struct HeldConnectionClosed: Error {}

/// The first of a query's answer and its connection's close resumes the caller; the other is dropped.
private final class OneAnswer: Sendable {
    private let waiting = Mutex<CheckedContinuation<PostgresRowSequence, any Error>?>(nil)

    func expect(_ continuation: CheckedContinuation<PostgresRowSequence, any Error>) {
        waiting.withLock { $0 = continuation }
    }

    func give(_ result: Result<PostgresRowSequence, any Error>) {
        waiting.withLock { $0.take() }?.resume(with: result)
    }
}

extension PostgresConnection {
    /// `heldQuery` that gives up after `timeout` and closes the connection: a held connection whose peer went
    /// silent (a partition, a stalled proxy) answers nothing and does not close by itself for minutes.
    func heldQuery(_ query: PostgresQuery, within timeout: Duration, logger: Logger) async throws -> [PostgresRow] {
        try await withDeadline(timeout) { [self] in
            // withDeadline always sets the scope; without one the query simply runs unbounded.
            guard let scope = DeadlineConnections.current else {
                return try await self.heldQuery(query, logger: logger).collect()
            }
            return try await scope.holding(self) { try await self.heldQuery(query, logger: logger).collect() }
        }
    }
}
