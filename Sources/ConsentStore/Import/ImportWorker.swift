import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Records received imports, chunk by chunk, on every instance: an instance takes an import by its lease
/// (`ImportLease`), records its chunks in order (each one transaction, `ConsentLedger.importChunk`, which renews
/// the lease), and marks it completed. An instance that dies mid-import leaves its current chunk in place, and
/// another takes the import over once the lease has run out; a chunk is recorded exactly once, because recording
/// it deletes it in the same transaction, which also checks the lease. Imports left `receiving` by an instance that
/// died during the upload are deleted the same way: their file never fully arrived.
public struct ImportWorker: Service {
    let database: ConsentDatabase
    let ledger: ConsentLedger
    let arrivals: ImportArrivals
    let logger: Logger
    /// How long it waits for an announcement before looking again.
    let idle: Duration

    public init(
        database: ConsentDatabase, ledger: ConsentLedger, arrivals: ImportArrivals, logger: Logger,
        idle: Duration = .seconds(30)
    ) {
        self.database = database
        self.ledger = ledger
        self.arrivals = arrivals
        self.logger = logger
        self.idle = idle
    }

    public func run() async {
        await cancelWhenGracefulShutdown {
            // It first waits: an instance that never imports opens no connection for it (a test suite of hundreds
            // of short-lived servers ran out of PostgreSQL connections when each looked at once).
            await arrivals.wait(upTo: idle)
            while !Task.isCancelled {
                do {
                    if try await recordNext() == nil { await arrivals.wait(upTo: idle) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning(
                        "import worker: a pass failed; retrying",
                        metadata: ["error": "\(String(reflecting: type(of: error)))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Takes one import that is ready (or whose lease ran out) and records it to the end; answers its id, or nil
    /// when there was none.
    @discardableResult
    public func recordNext(progress: (@Sendable (Int) -> Void)? = nil) async throws -> UUID? {
        try await bounded(Self.lookDeadline) { try await discardAbandonedUploads() }
        let candidates = try await bounded(Self.lookDeadline) { [database, logger] in
            try await database.client.withOperatorTransaction(logger: logger) { connection in
                try await connection.closeSafeQuery(
                    """
                    SELECT id, tenant_id FROM imports
                    WHERE status = 'running' AND (lease_holder IS NULL OR lease_until < now())
                    ORDER BY created_at LIMIT 10
                    """, logger: logger
                ).decode((UUID, UUID).self).array()
            }
        }
        for (id, tenantId) in candidates {
            guard let job = try await claim(id, tenantId: tenantId) else { continue }
            try await record(job, progress: progress)
            return id
        }
        return nil
    }

    /// Records one import to the end, if it is ready and nobody else holds it (the command line's import).
    public func record(_ id: UUID, tenantId: UUID, progress: (@Sendable (Int) -> Void)? = nil) async throws {
        guard let job = try await claim(id, tenantId: tenantId) else { return }
        try await record(job, progress: progress)
    }

    private func claim(_ id: UUID, tenantId: UUID) async throws -> (job: ImportJob, key: ImportKey)? {
        let claimed = try await bounded(Self.lookDeadline) { [database, logger] in
            try await database.commit(
                UnitOfWork.bookkeeping(tenantId) { connection, logger in
                    try await connection.closeSafeQuery(
                        """
                        UPDATE imports SET lease_holder = \(ImportLease.holder), lease_until = now() + interval '60 seconds'
                        WHERE id = \(id) AND status = 'running' AND (lease_holder IS NULL OR lease_until < now())
                        RETURNING channel, notice_id, recorded_by, actor, wrapped_key, master_key_id
                        """, logger: logger
                    ).decode((String, UUID, UUID, String, ByteBuffer?, ByteBuffer?).self).array().first
                }, logger: logger)
        }
        guard let row = claimed else { return nil }
        guard let channel = MessageChannel(rawValue: row.0), let wrapped = row.4 else {
            throw UnreadableGroupRows(why: "import \(id.lowercased) has no channel or key")
        }
        let key = try database.keyring.unwrapImportKey(
            Array(wrapped.readableBytesView), wrappedBy: row.5.map { Array($0.readableBytesView) }, importId: id)
        let job = ImportJob(
            id: id, tenantId: tenantId, channel: channel, noticeId: row.1, recordedBy: row.2, actor: row.3,
            holder: ImportLease.holder)
        return (job, ImportKey(key: key))
    }

    /// Runs a step of the worker's under a deadline, so that a database that stops answering (a partition, a
    /// stalled proxy) fails the step instead of holding it, and a shutdown ends it at once: `withDeadline` closes
    /// the step's connections when either comes (postgres-nio does not end a statement already sent on its own).
    private func bounded<Result: Sendable>(
        _ limit: Duration, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await withDeadline(limit, grace: .seconds(1), body)
    }

    /// For looking for work, taking it and finishing it; a chunk has `chunkDeadline`, longer than its lease, as a
    /// chunk of people already held can take tens of seconds (each is recorded by `app_record_opt_in`).
    static let lookDeadline: Duration = .seconds(15)
    static let chunkDeadline: Duration = .seconds(120)

    private func record(_ claimed: (job: ImportJob, key: ImportKey), progress: (@Sendable (Int) -> Void)?) async throws
    {
        let job = claimed.job
        do {
            try await recordChunks(claimed, progress: progress)
        } catch {
            // A chunk failed (a deadlock with another writer, the database gone): it is left as it was, and the
            // import is taken again in a few seconds rather than when the whole lease has run out.
            _ = try? await bounded(Self.lookDeadline) { [database, logger] in
                try await database.commit(
                    UnitOfWork.bookkeeping(job.tenantId) { connection, logger in
                        try await connection.closeSafeQuery(
                            """
                            UPDATE imports SET lease_until = clock_timestamp() + interval '5 seconds'
                            WHERE id = \(job.id) AND lease_holder = \(job.holder)
                            """, logger: logger)
                    }, logger: logger)
            }
            throw error
        }
        // Completed only when no chunk is left: one held by a worker that stalled past its lease (and is about to
        // be refused) was skipped, and is recorded when this lease has run out and the import is taken again.
        let completed = try await bounded(Self.lookDeadline) { [database, logger] in
            try await database.commit(
                UnitOfWork.bookkeeping(job.tenantId) { connection, logger in
                    try await connection.closeSafeQuery(
                        """
                        UPDATE imports SET status = 'completed', completed_at = now(), wrapped_key = NULL,
                                           master_key_id = NULL, lease_holder = NULL, lease_until = NULL
                        WHERE id = \(job.id) AND lease_holder = \(job.holder) AND status = 'running'
                          AND NOT EXISTS (SELECT 1 FROM import_chunks c WHERE c.import_id = \(job.id))
                        RETURNING id
                        """, logger: logger
                    ).decode(UUID.self).array().count == 1
                }, logger: logger)
        }
        logger.info(
            completed ? "import recorded" : "import: a chunk is still held elsewhere; taken again after the lease",
            metadata: ["import": "\(job.id.lowercased)"])
    }

    /// The import's chunks, two at a time: while one transaction waits on the database, the other seals its rows.
    private func recordChunks(_ claimed: (job: ImportJob, key: ImportKey), progress: (@Sendable (Int) -> Void)?)
        async throws
    {
        let job = claimed.job
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.chunksAtOnce {
                group.addTask {
                    let clock = ContinuousClock()
                    while true {
                        let started = clock.now
                        let outcome = try await bounded(Self.chunkDeadline) { [database, ledger, logger] in
                            try await database.commit(
                                ledger.importNextChunk(of: job, key: claimed.key), logger: logger)
                        }
                        guard let seq = outcome.seq else { return }
                        logger.debug(
                            "import chunk recorded",
                            metadata: [
                                "import": "\(job.id.lowercased)", "chunk": "\(seq)",
                                "lines": "\(outcome.results.count)",
                                "record_ms": "\((clock.now - started).milliseconds)",
                            ])
                        progress?(outcome.results.count)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Uploads whose instance stopped renewing their lease: the file never fully arrived, so nothing of it stays.
    private func discardAbandonedUploads() async throws {
        let abandoned = try await database.client.withOperatorTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery(
                "SELECT id, tenant_id FROM imports WHERE status = 'receiving' AND lease_until < now()", logger: logger
            ).decode((UUID, UUID).self).array()
        }
        for (id, tenantId) in abandoned {
            try await database.commit(
                UnitOfWork.bookkeeping(tenantId) { connection, logger in
                    try await connection.closeSafeQuery(
                        "DELETE FROM imports WHERE id = \(id) AND status = 'receiving' AND lease_until < now()",
                        logger: logger)
                }, logger: logger)
        }
    }
}

extension ImportWorker {
    /// How many chunks of one import are recorded at once: two, for the two cores measured on
    /// (docs/benchmarks.md, "Imports").
    static let chunksAtOnce = 2
}

/// The import's key, unwrapped: kept apart so that it is never logged with the job.
struct ImportKey: Sendable {
    let key: SymmetricKey
}
