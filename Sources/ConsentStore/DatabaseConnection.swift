import ConsentCore
import Foundation
import Logging
import PostgresNIO

extension PostgresClient.Configuration {
    /// The pool settings for a parsed `DATABASE_URL`.
    public init(_ url: DatabaseURL, maximumConnections: Int = 20, applicationName: String = uniqueApplicationName()) {
        switch url.endpoint {
        case .unixSocket(let path):
            self.init(unixSocketPath: path, username: url.username, password: url.password, database: url.database)
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS =
                switch url.tls {
                case .disable: .disable
                case .prefer: .prefer(.makeClientConfiguration())
                case .require: .require(.makeClientConfiguration())
                }
            self.init(
                host: host, port: port, username: url.username, password: url.password, database: url.database,
                tls: tls)
        }
        self.options.maximumConnections = maximumConnections
        // Each pool names its connections uniquely, so `pg_stat_activity` tells one instance's pool from another's
        // (the pool usage in `/metrics`) and an operator can see which instance holds a connection.
        self.options.additionalStartupParameters = [("application_name", applicationName)]
    }

    public static func uniqueApplicationName() -> String {
        "consentd-\(ProcessInfo.processInfo.processIdentifier)-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }
}

extension PostgresClient {
    public convenience init(url: DatabaseURL, maximumConnections: Int = 20, logger: Logger) {
        self.init(configuration: .init(url, maximumConnections: maximumConnections), backgroundLogger: logger)
    }
}

/// One pool's connections as the database sees them, by state: what `/metrics` calls pool usage.
public struct PoolUsage: Sendable, Equatable {
    /// Running a statement; the query that asks is one of them.
    public var active = 0
    public var idle = 0
    /// Inside a transaction between statements.
    public var idleInTransaction = 0

    public var open: Int { active + idle + idleInTransaction }

    /// Counts this pool's connections (those sharing the asking connection's unique application name).
    public static func read(_ client: PostgresClient, logger: Logger) async throws -> PoolUsage {
        var usage = PoolUsage()
        let rows = try await client.withRequestConnection { connection in
            try await connection.closeSafeQuery(
                """
                SELECT coalesce(state, ''), count(*)::int FROM pg_stat_activity
                WHERE application_name = current_setting('application_name') AND usename = current_user
                GROUP BY 1
                """, logger: logger
            ).decode((String, Int).self).array()
        }
        for (state, count) in rows {
            switch state {
            case "active": usage.active += count
            case "idle": usage.idle += count
            case "idle in transaction", "idle in transaction (aborted)": usage.idleInTransaction += count
            default: usage.active += count
            }
        }
        return usage
    }
}

/// Transactions that name their tenant first, so row-level security lets them see that tenant's rows and no other.
extension PostgresClient {
    public func withTenantTransaction<Result>(
        _ tenantId: UUID, logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.closeSafeQuery(
                "SELECT set_config('consentd.tenant_id', \(tenantId.uuidString), true)", logger: logger)
            return try await body(connection)
        }
    }

    /// A transaction on a request connection. A failure inside the body surfaces as itself (postgres-nio's
    /// `withTransaction` wraps it in `PostgresTransactionError`), so domain errors and SQLSTATEs reach the caller
    /// directly.
    ///
    /// Not postgres-nio's `withTransaction`: when the body fails because its connection closed (a request's
    /// deadline closes it; the server may end it), that sends `ROLLBACK` into the closed connection, where
    /// postgres-nio 1.33 drops it without an answer, and the request waited for ever (the test suite froze with
    /// it; issue 21, finding 9). Here a closed connection is not rolled back (the server ends the transaction with
    /// the session), and `BEGIN`, `COMMIT` and `ROLLBACK` go through `closeSafeQuery`.
    public func withUnwrappedTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withRequestConnection(isolation: isolation) { connection in
            try await connection.withCloseSafeTransaction(logger: logger, isolation: isolation, body)
        }
    }

    /// For operator commands that work across tenants (`consentd tenants list`). Never used by a request.
    public func withOperatorTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        try await withUnwrappedTransaction(logger: logger, isolation: isolation) { connection in
            try await connection.closeSafeQuery("SELECT set_config('consentd.operator', 'on', true)", logger: logger)
            return try await body(connection)
        }
    }
}

/// PostgreSQL errors as the store's callers need to see them.
public enum DatabaseErrors {
    /// The SQLSTATE of a server error, looking through the wrapper that `withTransaction` adds.
    public static func sqlState(_ error: any Error) -> String? {
        serverField(.sqlState, of: error)
    }

    public static func serverMessage(_ error: any Error) -> String? {
        serverField(.message, of: error)
    }

    static func serverField(_ field: PSQLError.ServerInfo.Field, of error: any Error) -> String? {
        causes(of: error).lazy.compactMap { $0.serverInfo?[field] }.first
    }

    /// The driver's errors behind `error`, looking through the wrapper that `withTransaction` adds.
    static func causes(of error: any Error) -> [PSQLError] {
        if let transactionError = error as? PostgresTransactionError {
            return [transactionError.closureError, transactionError.beginError, transactionError.commitError]
                .compactMap { $0 }.flatMap(causes(of:))
        }
        return (error as? PSQLError).map { [$0] } ?? []
    }

    /// True when the database went away or cannot take the statement now (a restart, a crash, a closed or broken
    /// connection), as opposed to refusing the statement itself: the request can be retried once it is back.
    public static func isUnavailable(_ error: any Error) -> Bool {
        error is LentClosedConnection || error is HeldConnectionClosed
            || causes(of: error).contains(where: isUnavailable(_:))
    }

    static func isUnavailable(_ error: PSQLError) -> Bool {
        switch error.code {
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
            return true
        case .server:
            // Class 08 is connection exceptions; 57P01–57P03 are an administrator's or a crash's shutdown and
            // "cannot connect now" while the server starts.
            guard let state = error.serverInfo?[.sqlState] else { return false }
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
        default:
            return false
        }
    }

    /// A statement that could not run in time: a lock held elsewhere past `lock_timeout` (55P03), or a statement
    /// past `statement_timeout` (57014). Its transaction rolled back, so nothing was written.
    public static func isBusy(_ error: any Error) -> Bool {
        guard let state = sqlState(error) else { return false }
        return state == "55P03" || state == "57014"
    }

    public static let uniqueViolation = "23505"
    public static let insufficientPrivilege = "42501"
}

extension AsyncSequence {
    /// Every element, in order: for the small, bounded result sets of the store's queries.
    func array() async throws -> [Element] {
        var elements: [Element] = []
        for try await element in self { elements.append(element) }
        return elements
    }
}

extension PostgresConnection {
    /// BEGIN, the body, COMMIT; ROLLBACK when the body fails on a connection still open (`withUnwrappedTransaction`
    /// says why not postgres-nio's `withTransaction`). A connection found closed at BEGIN ran nothing: it is
    /// reported as lent closed, so that `withRequestConnection` leases another.
    func withCloseSafeTransaction<Result>(
        logger: Logger, isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        do {
            _ = try await closeSafeQuery("BEGIN", logger: logger)
        } catch is HeldConnectionClosed {
            throw LentClosedConnection()
        }
        let value: Result
        do {
            value = try await body(self)
        } catch {
            if !isClosed { _ = try? await closeSafeQuery("ROLLBACK", logger: logger) }
            throw error
        }
        _ = try await closeSafeQuery("COMMIT", logger: logger)
        return value
    }
}
