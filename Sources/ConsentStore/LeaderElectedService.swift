import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Runs a periodic pass in the one instance that holds its `LeaderLock`, so several instances can serve the same
/// database: the audit sequencer (every second) and the retention job (every ten minutes). The lock lives on a
/// connection of its own (`DedicatedConnector`, outside the request pool it used to starve) for as long as the
/// instance leads; if that connection dies, PostgreSQL releases it and another instance takes over at its next
/// attempt, within about one interval (see docs/architecture.md). The leader proves the connection alive between
/// passes within `livenessTimeout`, and closes it when it cannot: a lock on a silent connection is not a lead.
public struct LeaderElectedService: Service {
    let connector: DedicatedConnector
    let lock: LeaderLock
    let interval: Duration
    let logger: Logger
    let pass: @Sendable (Logger) async throws -> Void

    let livenessTimeout: Duration

    public init(
        connector: DedicatedConnector, lock: LeaderLock, interval: Duration, livenessTimeout: Duration = .seconds(5),
        logger: Logger, pass: @escaping @Sendable (Logger) async throws -> Void
    ) {
        self.connector = connector
        self.livenessTimeout = livenessTimeout
        self.lock = lock
        self.interval = interval
        self.logger = logger
        self.pass = pass
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await leadWhenPossible()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning(
                        "\(lock.role): lost its database connection; retrying",
                        metadata: ["error": "\(String(reflecting: type(of: error)))"])
                }
                // Followers retry at most every few seconds, so a long interval does not delay a take-over.
                try? await Task.sleep(for: min(interval, .seconds(5)))
            }
        }
    }

    /// Takes the lock if free and runs a pass every interval while holding it; returns (after releasing it) only
    /// when the lock connection fails or the service is cancelled.
    func leadWhenPossible() async throws {
        try await connector.withConnection(role: lock.connectionRole, logger: logger) { connection in
            guard try await lock.tryAcquire(on: connection, logger: logger) else { return }
            logger.info("\(lock.role): this instance leads")
            do {
                while !Task.isCancelled {
                    do {
                        try await pass(logger)
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // A failed pass changes nothing (its transactions roll back); the next one retries.
                        logger.error("\(lock.role): a pass failed", metadata: ["error": "\(String(reflecting: error))"])
                    }
                    try await Task.sleep(for: interval)
                    // Still connected, so still holding the lock.
                    _ = try await connection.heldQuery("SELECT 1", within: livenessTimeout, logger: logger)
                }
            } catch {
                // Give the lock back before the connection closes; a dead connection has lost it anyway.
                try? await lock.release(on: connection, logger: logger)
                throw error
            }
            try? await lock.release(on: connection, logger: logger)
        }
    }
}
