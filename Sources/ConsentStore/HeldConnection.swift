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
    ///
    /// Every statement the store sends goes through here, save two: a connection can close under any of them (a
    /// deadline, a restart, `pg_terminate_backend`), and the body that sent the one before does not know it yet.
    /// The two are the check path's prepared statements (`ConsentLookup`, `APIKeyStore.read`): postgres-nio has no
    /// event-loop form of `execute`, so they run under a deadline with a grace instead, which answers the caller
    /// even if the statement never is. The rows are read in full before they are handed over; the store's result
    /// sets are small and bounded (pages, one person's records).
    /// Discardable: most of the store's writes need no rows back.
    @discardableResult
    public func closeSafeQuery(
        _ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line
    ) async throws -> StoreRows {
        let result = try await eventLoop.flatSubmit { [self] () -> EventLoopFuture<PostgresQueryResult> in
            guard !isClosed else { return eventLoop.makeFailedFuture(HeldConnectionClosed()) }
            return self.query(query, logger: logger, file: file, line: line)
        }.get()
        return StoreRows(rows: result.rows)
    }

    /// `closeSafeQuery` on a connection this instance holds for a long time (a leader's lock, the change feed),
    /// giving up after `timeout` and closing the connection: a held connection whose peer went silent (a
    /// partition, a stalled proxy) answers nothing and does not close by itself for minutes.
    func heldQuery(_ query: PostgresQuery, within timeout: Duration, logger: Logger) async throws -> StoreRows {
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

/// A statement's rows, read in full (`closeSafeQuery`); iterated and decoded as postgres-nio's row sequence is.
public struct StoreRows: AsyncSequence, Sendable {
    public typealias Element = PostgresRow
    public let rows: [PostgresRow]

    public struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: IndexingIterator<[PostgresRow]>
        public mutating func next() async -> PostgresRow? { remaining.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: rows.makeIterator()) }

    /// All rows (already read): for call sites written against postgres-nio's sequence.
    public func collect() async -> [PostgresRow] { rows }

    public func decode<each Column: PostgresDecodable>(
        _ columnType: (repeat each Column).Type, file: String = #fileID, line: Int = #line
    ) -> AsyncThrowingMapSequence<StoreRows, (repeat each Column)> {
        map { row in try row.decode(columnType, file: file, line: line) }
    }
}
