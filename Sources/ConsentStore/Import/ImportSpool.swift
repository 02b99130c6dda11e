import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// The rows of an import being received, checked as they arrive and kept a chunk at a time: sealed in
/// `import_chunks` to be recorded, or, for a dry run, only their rejections in `import_rows`.
struct ImportSpool: Sendable {
    let importId: UUID
    let tenantId: UUID
    let key: SymmetricKey
    let dryRun: Bool
    let chunkLines: Int
    var validator: ImportRowValidator
    private(set) var rowsRead = 0
    private var chunk = ImportChunk()
    private var seq = 0
    /// When the upload's lease was last renewed: a file that arrives slowly must not look abandoned between chunks.
    private var renewed = ContinuousClock.now

    init(
        importId: UUID, tenantId: UUID, key: SymmetricKey, dryRun: Bool, chunkLines: Int, validator: ImportRowValidator
    ) {
        self.importId = importId
        self.tenantId = tenantId
        self.key = key
        self.dryRun = dryRun
        self.chunkLines = chunkLines
        self.validator = validator
    }

    /// Renews the upload's lease when 20 s have passed without a chunk doing it.
    mutating func renewLeaseIfDue(database: ConsentDatabase, logger: Logger) async throws {
        guard ContinuousClock.now - renewed > .seconds(20) else { return }
        let (importId, tenantId) = (importId, tenantId)
        try await database.commit(
            UnitOfWork.bookkeeping(tenantId) { connection, logger in
                try await connection.closeSafeQuery(
                    """
                    UPDATE imports SET lease_until = clock_timestamp() + interval '60 seconds'
                    WHERE id = \(importId) AND status = 'receiving'
                    """, logger: logger)
            }, logger: logger)
        renewed = ContinuousClock.now
    }

    mutating func add(_ records: [ImportRecord], database: ConsentDatabase, logger: Logger) async throws {
        for record in records {
            switch validator.validate(record) {
            case .success(let row): chunk.rows.append(row)
            case .failure(let rejection): chunk.rejections.append(rejection)
            }
            rowsRead += 1
            if chunk.count >= chunkLines { try await flush(database: database, logger: logger) }
        }
    }

    /// Keeps the chunk read so far, and renews the lease of the import being received.
    mutating func flush(database: ConsentDatabase, logger: Logger) async throws {
        guard chunk.count > 0 else { return }
        seq += 1
        let (chunk, seq, importId, tenantId) = (chunk, seq, importId, tenantId)
        let work: UnitOfWork<Void>
        if dryRun {
            let rejections = chunk.rejections
            work = UnitOfWork.bookkeeping(tenantId) { connection, logger in
                try await connection.closeSafeQuery(
                    """
                    WITH kept AS (
                        INSERT INTO import_rows (import_id, tenant_id, line, outcome, reason)
                        SELECT \(importId), \(tenantId), r.line, 'invalid', r.reason
                        FROM unnest(\(rejections.map { Int32($0.line) }), \(rejections.map(\.reason))) AS r(line, reason)
                    )
                    UPDATE imports SET invalid = invalid + \(Int32(rejections.count)),
                                       rows_read = rows_read + \(Int32(chunk.count)), lease_until = clock_timestamp() + interval '60 seconds'
                    WHERE id = \(importId)
                    """, logger: logger)
            }
        } else {
            let sealed = chunk.sealed(with: key, importId: importId, seq: seq)
            work = UnitOfWork.bookkeeping(tenantId) { connection, logger in
                try await connection.closeSafeQuery(
                    """
                    WITH kept AS (
                        INSERT INTO import_chunks (import_id, tenant_id, seq, first_line, last_line, sealed)
                        VALUES (\(importId), \(tenantId), \(Int32(seq)), \(Int32(chunk.firstLine)),
                                \(Int32(chunk.lastLine)), \(ByteBuffer(bytes: sealed)))
                    )
                    UPDATE imports SET rows_read = rows_read + \(Int32(chunk.count)), lease_until = clock_timestamp() + interval '60 seconds'
                    WHERE id = \(importId)
                    """, logger: logger)
            }
        }
        try await database.commit(work, logger: logger)
        self.chunk = ImportChunk()
        renewed = ContinuousClock.now
    }
}

/// Tells this instance's worker that an import is ready, so that it starts at once rather than at its next look.
public final class ImportArrivals: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (stream, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func announce() { continuation.yield() }

    /// Waits for an announcement or `timeout`, whichever comes first.
    func wait(upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [stream] in
                for await _ in stream { return }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
