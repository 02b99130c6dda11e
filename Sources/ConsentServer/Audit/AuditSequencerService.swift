import ConsentStore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Runs the audit sequencer in the one instance that holds the database's sequencer lock, so several instances
/// can serve the same database. The lock is a session-level advisory lock held on one pooled connection for as
/// long as the instance leads; if that connection dies, PostgreSQL releases the lock and another instance takes
/// over at its next attempt. An event therefore reaches a signed checkpoint within about one interval of its
/// commit, or two intervals plus a reconnect when the leader changes (see docs/architecture.md).
public struct AuditSequencerService: Service {
    let client: PostgresClient
    let sequencer: AuditSequencer
    let interval: Duration
    let logger: Logger

    public init(client: PostgresClient, sequencer: AuditSequencer, interval: Duration = .seconds(1), logger: Logger) {
        self.client = client
        self.sequencer = sequencer
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await leadWhenPossible()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("audit sequencer: lost its database connection; retrying", metadata: ["error": "\(String(reflecting: type(of: error)))"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Takes the lock if free and sequences every interval while holding it; returns (after releasing it) only
    /// when the lock connection fails or the service is cancelled.
    func leadWhenPossible() async throws {
        try await client.withConnection { connection in
            guard try await AuditSequencer.tryAcquireLeadership(on: connection, logger: logger) else { return }
            logger.info("audit sequencer: this instance leads")
            do {
                while !Task.isCancelled {
                    do {
                        try await sequencer.sequenceAll(logger: logger)
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // A failed pass changes nothing (its transaction rolls back); the next one retries.
                        logger.error("audit sequencer: a pass failed", metadata: ["error": "\(String(reflecting: error))"])
                    }
                    try await Task.sleep(for: interval)
                    // Still connected, so still holding the lock.
                    try await connection.query("SELECT 1", logger: logger)
                }
            } catch {
                // Give the lock back before the connection returns to the pool; a dead connection has lost it anyway.
                try? await AuditSequencer.releaseLeadership(on: connection, logger: logger)
                throw error
            }
            try? await AuditSequencer.releaseLeadership(on: connection, logger: logger)
        }
    }
}
