import Logging
import PostgresNIO

extension PostgresConnection {
    /// A query on a connection this instance holds for a long time (a leader's lock, the change feed), which the
    /// server may have closed while it sat idle: fails at once if so. postgres-nio 1.33 writes a query to a closed
    /// connection's torn-down pipeline without a promise, so its answer never comes and the caller waits forever
    /// (found by killing a leader's backend with `pg_terminate_backend`: the leader stopped leading and the
    /// service then never shut down). A close that lands between this check and the write is not caught.
    func heldQuery(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        guard !isClosed else { throw HeldConnectionClosed() }
        return try await self.query(query, logger: logger)
    }
}

/// The server closed a held connection (`heldQuery`).
struct HeldConnectionClosed: Error {}
