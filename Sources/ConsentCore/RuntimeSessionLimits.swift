/// The waits PostgreSQL bounds for the runtime role's sessions, set on the role by `consentd migrate`
/// (`ALTER ROLE … SET`), so that every connection the service opens has them from its first statement and nothing
/// in the service can forget to set them (issue 21, finding 2).
///
/// Each is shorter than the request deadline (30 s by default), so that the server ends a statement before the
/// client stops waiting for it and no backend runs on for a request already answered 503.
public struct RuntimeSessionLimits: Sendable, Equatable {
    /// The longest one statement runs (`statement_timeout`).
    public var statementTimeoutSeconds = 25
    /// The longest a statement waits for a lock another session holds (`lock_timeout`): a write behind a table
    /// lock fails with 55P03 and answers 503 `database_busy` instead of holding its connection.
    public var lockTimeoutSeconds = 10
    /// A session left in a transaction with no statement for this long is ended, releasing its locks
    /// (`idle_in_transaction_session_timeout`): a client that vanished mid-transaction holds nothing for long.
    public var idleInTransactionSeconds = 20
    /// Server-side TCP keepalive (`tcp_keepalives_idle`, `_interval`, `_count`): the server finds a client that
    /// vanished without a FIN in idle + interval × count seconds.
    public var keepaliveIdleSeconds = 10
    public var keepaliveIntervalSeconds = 5
    public var keepaliveCount = 3
    /// How often a running statement checks that its client is still there (`client_connection_check_interval`),
    /// so a statement whose request was cut off by its deadline (which closes the connection) stops early.
    public var clientCheckSeconds = 1
    /// No JIT compilation (`jit`): the service's statements are short, and a set-based write over thousands of
    /// rows (an import's chunk) crosses `jit_above_cost` on row estimates alone, then spends more time compiling
    /// (measured: 200 to 300 ms of a 290 ms statement, inlining and optimising 33 functions) than running.
    public var justInTimeCompilation = false

    public init() {}

    public static let `default` = RuntimeSessionLimits()

    /// The settings as `ALTER ROLE … SET` takes them, in a fixed order.
    public var settings: [(name: String, value: String)] {
        [
            ("statement_timeout", "\(statementTimeoutSeconds)s"),
            ("lock_timeout", "\(lockTimeoutSeconds)s"),
            ("idle_in_transaction_session_timeout", "\(idleInTransactionSeconds)s"),
            ("tcp_keepalives_idle", "\(keepaliveIdleSeconds)"),
            ("tcp_keepalives_interval", "\(keepaliveIntervalSeconds)"),
            ("tcp_keepalives_count", "\(keepaliveCount)"),
            ("client_connection_check_interval", "\(clientCheckSeconds)s"),
            ("jit", justInTimeCompilation ? "on" : "off"),
        ]
    }

    /// `CONSENTD_STATEMENT_TIMEOUT_SECONDS`, `CONSENTD_LOCK_TIMEOUT_SECONDS`, `CONSENTD_IDLE_IN_TRANSACTION_SECONDS`.
    public init(environment: [String: String]) throws(ConfigurationError) {
        statementTimeoutSeconds = try EnvironmentReader.count(
            environment, "CONSENTD_STATEMENT_TIMEOUT_SECONDS", default: statementTimeoutSeconds, range: 1...3600)
        lockTimeoutSeconds = try EnvironmentReader.count(
            environment, "CONSENTD_LOCK_TIMEOUT_SECONDS", default: lockTimeoutSeconds, range: 1...3600)
        idleInTransactionSeconds = try EnvironmentReader.count(
            environment, "CONSENTD_IDLE_IN_TRANSACTION_SECONDS", default: idleInTransactionSeconds, range: 1...3600)
    }
}
