import Foundation
import Logging
import PostgresNIO

/// A database-wide role that one instance plays at a time (the audit sequencer, the retention job): a
/// session-level advisory lock held on one connection for as long as the instance leads. If that connection dies,
/// PostgreSQL releases the lock and another instance takes the role at its next attempt.
public struct LeaderLock: Sendable, Equatable {
    public let key: Int64
    public let role: String

    public static let auditSequencer = LeaderLock(key: 0x636F_6E73_6571_7565, role: "audit sequencer")  // "conseque"
    public static let retention = LeaderLock(key: 0x636F_6E72_6574_6E74, role: "retention")  // "conretnt"

    /// How its connection is named in `pg_stat_activity` (after the instance's application name).
    var connectionRole: String { role.replacingOccurrences(of: " ", with: "-") }

    /// Both bounded: the lock's connection is one of its own, which no request deadline closes.
    public func tryAcquire(on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.heldQuery("SELECT pg_try_advisory_lock(\(key))", within: .seconds(5), logger: logger)
            .rows.first?.decode(Bool.self) ?? false
    }

    public func release(on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.heldQuery("SELECT pg_advisory_unlock(\(key))", within: .seconds(5), logger: logger)
    }
}
