import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// Runs `body`, or fails with `DeadlineExceeded` when it takes longer than `duration`: the pool waits for a
/// database that does not answer, and a request, a start-up check or a readiness probe must answer anyway.
///
/// Cancelling `body` is not enough on its own: postgres-nio does not end a statement already sent when its task is
/// cancelled, so a request waiting on a held lock or a silent network kept its pooled connection, and its caller,
/// until the server answered (54 s behind a 55 s lock for a 30 s deadline; issue 21, finding 2). So the
/// connections `body` leases through `withRequestConnection` are registered here, and the deadline closes them:
/// the statement fails at once, the pool opens a fresh connection in its place, and PostgreSQL ends the backend
/// (`client_connection_check_interval`, set by `consentd migrate`) rather than run on for no one.
///
/// The timer is an event loop's scheduled task, which cancelling removes. A `Task.sleep` would not do on the
/// request path: on Linux a cancelled sleep leaves its dispatch timer queued until it would have fired, so at
/// thousands of requests a second a 30 s deadline kept some 200,000 timers alive (150 MB more RSS with a million
/// cached subjects; docs/benchmarks.md).
///
/// Closing its connections normally ends the body at once: its statement fails with the connection. A body that
/// still does not end (a statement written into a connection already torn down, which postgres-nio 1.33 never
/// answers: `closeSafeQuery`) is left behind, suspended, once `grace` is over, and the caller answers anyway, so
/// that neither it nor an instance's shutdown waits for an answer that cannot come. Without a grace the caller waits
/// for the body, whatever it takes: what a body that borrows the caller's frame needs (`RequestDeadlineMiddleware`
/// runs a non-escaping `next`). The pool does not miss a connection a left-behind body leased: a closed connection
/// leaves the pool's count whether or not it was handed back.
public func withDeadline<Result: Sendable>(
    _ duration: Duration, grace: Duration? = nil, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let connections = DeadlineConnections(expiry: .now + duration)
    let answer = DeadlineAnswer<Result>()
    let work = Task {
        do {
            let value = try await DeadlineConnections.$current.withValue(connections) { try await body() }
            answer.give(.success(value))
            return value
        } catch {
            answer.give(.failure(error))
            throw error
        }
    }
    let loop = MultiThreadedEventLoopGroup.singleton.any()
    let stop: @Sendable (any Error) -> Void = { reason in
        connections.closeAll()
        work.cancel()
        if let grace { loop.scheduleTask(in: TimeAmount(grace)) { answer.give(.failure(reason)) } }
    }
    let timer = loop.scheduleTask(in: TimeAmount(duration)) {
        answer.markExpired()
        stop(DeadlineExceeded(after: duration))
    }
    defer { timer.cancel() }
    do {
        return try await withTaskCancellationHandler {
            // Without a grace, the task itself is awaited: it has let go of `body` only once it has ended.
            guard grace != nil else { return try await work.value }
            return try await answer.value()
        } onCancel: {
            stop(CancellationError())
        }
    } catch  where answer.isExpired {
        throw DeadlineExceeded(after: duration)
    }
}

/// The first of the body's outcome and the grace period's end: what `withDeadline` answers.
private final class DeadlineAnswer<Value: Sendable>: Sendable {
    private struct State {
        var outcome: Swift.Result<Value, any Error>?
        var waiting: CheckedContinuation<Value, any Error>?
        var expired = false
    }

    private let state = Mutex(State())

    var isExpired: Bool { state.withLock { $0.expired } }

    func markExpired() { state.withLock { $0.expired = true } }

    func give(_ outcome: Swift.Result<Value, any Error>) {
        let waiting: CheckedContinuation<Value, any Error>? = state.withLock { state in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            return state.waiting.take()
        }
        waiting?.resume(with: outcome)
    }

    func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Swift.Result<Value, any Error>? = state.withLock { state in
                if state.outcome == nil { state.waiting = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }
}

public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let after: Duration
    public var description: String { "no answer within \(after)" }

    public init(after: Duration) { self.after = after }
}

/// The pooled connections one `withDeadline` body is using right now.
final class DeadlineConnections: Sendable {
    @TaskLocal static var current: DeadlineConnections?

    /// When the deadline these connections are held under runs out.
    let expiry: ContinuousClock.Instant

    init(expiry: ContinuousClock.Instant) {
        self.expiry = expiry
    }

    /// When the deadline the current task runs under runs out, if it runs under one.
    static var currentExpiry: ContinuousClock.Instant? { current?.expiry }

    private struct State {
        var closed = false
        var held: [ObjectIdentifier: PostgresConnection] = [:]
    }

    private let state = Mutex(State())

    /// Runs `body` with `connection` registered; after `closeAll` a new registration closes its connection at once.
    func holding<Result>(
        _ connection: PostgresConnection, isolation: isolated (any Actor)? = #isolation,
        _ body: () async throws -> sending Result
    ) async throws -> sending Result {
        let id = ObjectIdentifier(connection)
        let closed = state.withLock { state in
            if !state.closed { state.held[id] = connection }
            return state.closed
        }
        if closed {
            connection.closeNow()
            throw CancellationError()
        }
        defer { _ = state.withLock { $0.held.removeValue(forKey: id) } }
        return try await body()
    }

    /// Whether the deadline (or the caller's cancellation) closed the connections.
    var isClosed: Bool { state.withLock { $0.closed } }

    func closeAll() {
        let held = state.withLock { state in
            state.closed = true
            defer { state.held = [:] }
            return Array(state.held.values)
        }
        for connection in held { connection.closeNow() }
    }
}

extension PostgresClient {
    /// `withConnection` for work a request waits for: its deadline, if it has one, may close the connection.
    ///
    /// A connection that closed under the work (closed by a deadline, or ended by the server) goes back to the pool
    /// only once it has finished closing. Released earlier, the pool could lend it to the next request before it
    /// knew it was closed, and postgres-nio 1.33 writes that request's query into the closed pipeline without ever
    /// answering it: the request, and with it the process's shutdown, waited for ever. That was the "unexplained
    /// hang" of a test that ended its own pooled backend (issue 21, finding 9).
    static let closedLeasesSkipped = 8

    func withRequestConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        // A connection the server ended while it was idle in the pool (a restart, `pg_terminate_backend`) may still
        // be lent before the pool hears of it, and a query written to it would never be answered: it is handed back
        // once closed, and another one leased.
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await leased(isolation: isolation, body)
            } catch is LentClosedConnection where attempt < Self.closedLeasesSkipped {
                continue
            }
        }
    }

    private func leased<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withConnection(isolation: isolation) { connection in
            if connection.isClosed {
                try? await connection.closeFuture.get()
                throw LentClosedConnection()
            }
            let scope = DeadlineConnections.current
            do {
                guard let scope else { return try await body(connection) }
                return try await scope.holding(connection, isolation: isolation) { try await body(connection) }
            } catch {
                if connection.isClosed || DatabaseErrors.isUnavailable(error) || scope?.isClosed == true {
                    connection.closeNow()
                    try? await connection.closeFuture.get()
                }
                throw error
            }
        }
    }
}

/// The pool lent a connection that had already closed (`withRequestConnection`): the database is unavailable to
/// this request, as with any other closed connection.
struct LentClosedConnection: Error {}

extension Duration {
    /// Whole milliseconds: for log lines, recorded latencies and the HTTP client's timeouts.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
