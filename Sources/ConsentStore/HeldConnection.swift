import Logging
import NIOCore
import PostgresNIO

extension PostgresConnection {
    /// A query that fails, instead of waiting for ever, when the connection is closed or closes while it runs.
    ///
    /// postgres-nio 1.33 writes a query into its channel without a promise for the write. Once a closed channel's
    /// pipeline has been torn down, such a write is dropped and its answer never comes: found by killing a leader's
    /// backend (the service then never shut down), and again as the whole test suite freezing when a request's
    /// deadline closed its connection and `withTransaction` then sent `ROLLBACK` into it (issue 21, finding 9).
    /// Checking `isClosed` first is not enough from another thread: the close can land between the check and the
    /// write. On the connection's event loop the two are one step: a channel still active there still has its
    /// handler, which answers a query it cannot run with an error when the connection closes.
    func closeSafeQuery(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await eventLoop.flatSubmit { [self] () -> EventLoopFuture<PostgresQueryResult> in
            guard !isClosed else { return eventLoop.makeFailedFuture(HeldConnectionClosed()) }
            return self.query(query, logger: logger)
        }.get().rows
    }

    /// `closeSafeQuery` on a connection this instance holds for a long time (a leader's lock, the change feed),
    /// giving up after `timeout` and closing the connection: a held connection whose peer went silent (a
    /// partition, a stalled proxy) answers nothing and does not close by itself for minutes.
    func heldQuery(_ query: PostgresQuery, within timeout: Duration, logger: Logger) async throws -> [PostgresRow] {
        try await withDeadline(timeout, grace: .seconds(1)) { [self] in
            // withDeadline always sets the scope; without one the query simply runs unbounded.
            guard let scope = DeadlineConnections.current else {
                return try await self.closeSafeQuery(query, logger: logger)
            }
            return try await scope.holding(self) { try await self.closeSafeQuery(query, logger: logger) }
        }
    }
}

/// The connection was closed before or while a query ran on it (`closeSafeQuery`).
struct HeldConnectionClosed: Error {}
