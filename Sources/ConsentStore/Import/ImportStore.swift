import ConsentCore
import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// Bulk imports of legacy opt-ins (sql/migrations/0017 describes the life of one). This type receives a file and
/// answers what became of it; `ImportWorker` records what was received. Every change it makes goes through
/// `ConsentDatabase.commit`.
public struct ImportStore: Sendable {
    let database: ConsentDatabase
    /// Wakes this instance's worker when a file is in.
    let arrivals: ImportArrivals

    /// Reads `body` (a file in `parameters.format`) row by row as it arrives and keeps it, sealed, to be recorded;
    /// answers the import as it stands once the file is in (`running`, or `validated` for a dry run). A file that
    /// cannot be read is refused with its line (`ImportRefusal.malformed`) and nothing of it is kept; nor is
    /// anything kept of a file whose sender went away before its end.
    public func receive<Body: AsyncSequence & Sendable>(
        _ body: Body, parameters: ImportParameters, recordedBy: UUID, actor: String, tenantId: UUID, logger: Logger
    ) async throws -> ImportSummary where Body.Element == ByteBuffer {
        try await receive(
            body, parameters: parameters, recordedBy: recordedBy, actor: actor, tenantId: tenantId,
            chunkLines: ImportChunk.lines, logger: logger)
    }

    /// `chunkLines` is `ImportChunk.lines` but in tests, which need several chunks from a few lines.
    func receive<Body: AsyncSequence & Sendable>(
        _ body: Body, parameters: ImportParameters, recordedBy: UUID, actor: String, tenantId: UUID, chunkLines: Int,
        logger: Logger
    ) async throws -> ImportSummary where Body.Element == ByteBuffer {
        let notice = try await database.read(tenantId, logger: logger) { connection in
            try await NoticeStore.get(parameters.noticeId, on: connection, logger: logger)
        }
        guard let notice else { throw ImportRefusal.noticeNotFound }
        guard notice.channel == parameters.channel else { throw ImportRefusal.noticeForAnotherChannel(notice.channel) }
        let importId = UUID()
        let (key, wrapped, masterKeyId) = database.keyring.newImportKey(importId: importId)
        try await database.commit(
            UnitOfWork.bookkeeping(tenantId) { connection, logger in
                try await connection.closeSafeQuery(
                    """
                    INSERT INTO imports (id, tenant_id, channel, notice_id, format, dry_run, status, recorded_by, actor,
                                         wrapped_key, master_key_id, lease_holder, lease_until)
                    VALUES (\(importId), \(tenantId), \(parameters.channel.rawValue), \(parameters.noticeId),
                            \(Self.formatName(parameters.format)), \(parameters.dryRun), 'receiving', \(recordedBy),
                            \(actor), \(ByteBuffer(bytes: wrapped)), \(ByteBuffer(bytes: masterKeyId)),
                            \(ImportLease.holder), now() + interval '60 seconds')
                    """, logger: logger)
            }, logger: logger)
        var spool = ImportSpool(
            importId: importId, tenantId: tenantId, key: key, dryRun: parameters.dryRun, chunkLines: chunkLines,
            validator: ImportRowValidator(
                channel: parameters.channel, noticePurposes: Set(notice.purposes), now: Date()))
        do {
            var reader = ImportRecordReader(format: parameters.format)
            var hasher = SHA256()
            var bytes: Int64 = 0
            for try await buffer in body {
                bytes += Int64(buffer.readableBytes)
                guard bytes <= ImportParameters.maxFileBytes else {
                    throw ImportRefusal.tooLarge(limit: ImportParameters.maxFileBytes)
                }
                buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                let records: [ImportRecord]
                do { records = try reader.read(buffer.readableBytesView) } catch {
                    throw ImportRefusal.malformed(error)
                }
                try await spool.add(records, database: database, logger: logger)
                try await spool.renewLeaseIfDue(database: database, logger: logger)
            }
            let last: [ImportRecord]
            do { last = try reader.finish() } catch { throw ImportRefusal.malformed(error) }
            try await spool.add(last, database: database, logger: logger)
            try await spool.flush(database: database, logger: logger)
            let sha = Array(hasher.finalize())
            try await database.commit(
                UnitOfWork.bookkeeping(tenantId) { [spool, bytes] connection, logger in
                    try await connection.closeSafeQuery(
                        """
                        UPDATE imports SET
                            status = CASE WHEN dry_run THEN 'validated' ELSE 'running' END,
                            file_sha256 = \(ByteBuffer(bytes: sha)), file_bytes = \(bytes), rows_read = \(spool.rowsRead),
                            same_file_as = (SELECT e.id FROM imports e
                                            WHERE e.tenant_id = \(tenantId) AND e.file_sha256 = \(ByteBuffer(bytes: sha))
                                              AND NOT e.dry_run AND e.id <> \(importId)
                                              AND e.status IN ('running', 'completed')
                                            ORDER BY e.created_at LIMIT 1),
                            received_at = now(), lease_holder = NULL, lease_until = NULL,
                            completed_at = CASE WHEN dry_run THEN now() END,
                            wrapped_key = CASE WHEN dry_run THEN NULL ELSE wrapped_key END,
                            master_key_id = CASE WHEN dry_run THEN NULL ELSE master_key_id END
                        WHERE id = \(importId)
                        """, logger: logger)
                }, logger: logger)
        } catch {
            try? await discard(importId, tenantId: tenantId, logger: logger)
            throw error
        }
        arrivals.announce()
        guard let summary = try await summary(importId, tenantId: tenantId, logger: logger) else {
            throw ImportVanished(id: importId)
        }
        return summary
    }

    /// An import and everything kept of it (chunks, rows) deleted: the file was refused or never arrived.
    private func discard(_ importId: UUID, tenantId: UUID, logger: Logger) async throws {
        try await database.commit(
            UnitOfWork.bookkeeping(tenantId) { connection, logger in
                try await connection.closeSafeQuery("DELETE FROM imports WHERE id = \(importId)", logger: logger)
            }, logger: logger)
    }

    public func summary(_ id: UUID, tenantId: UUID, logger: Logger) async throws -> ImportSummary? {
        try await database.read(tenantId, logger: logger) { connection in
            try await Self.summaries("WHERE id = \(id)", on: connection, logger: logger).first
        }
    }

    /// The tenant's imports, newest first.
    public func list(tenantId: UUID, limit: Int = 50, logger: Logger) async throws -> [ImportSummary] {
        try await database.read(tenantId, logger: logger) { connection in
            try await Self.summaries(
                "WHERE tenant_id = \(tenantId) ORDER BY created_at DESC LIMIT \(limit)", on: connection, logger: logger)
        }
    }

    /// The rows that did not end granted or pending, in line order, `limit` at a time after line `after`.
    public func rejectedRows(_ id: UUID, tenantId: UUID, after: Int, limit: Int, logger: Logger) async throws
        -> [ImportRejectedRow]
    {
        try await database.read(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT line, outcome, reason FROM import_rows
                WHERE import_id = \(id) AND outcome NOT IN ('granted', 'pending') AND line > \(Int32(clamping: after))
                ORDER BY line LIMIT \(Int32(clamping: limit))
                """, logger: logger
            ).decode((Int32, String, String?).self).array()
            return try rows.map { line, outcome, reason in
                guard let outcome = ImportOutcome(rawValue: outcome) else {
                    throw UnreadableGroupRows(why: "import outcome '\(outcome)'")
                }
                return ImportRejectedRow(line: Int(line), outcome: outcome, reason: reason)
            }
        }
    }

    private static func summaries(_ filter: PostgresQuery, on connection: PostgresConnection, logger: Logger)
        async throws -> [ImportSummary]
    {
        var query: PostgresQuery = """
            SELECT id, status, channel, notice_id, format, dry_run, file_sha256, file_bytes, same_file_as, rows_read,
                   rows_recorded, granted, pending, superseded, suppressed, duplicate, invalid, created_at,
                   received_at, completed_at
            FROM imports
            """
        query.sql += " " + filter.sql
        query.binds = filter.binds
        var summaries: [ImportSummary] = []
        let rows = try await connection.closeSafeQuery(query, logger: logger).decode(
            (
                UUID, String, String, UUID, String, Bool, ByteBuffer?, Int64, UUID?, Int32, Int32, Int32, Int32, Int32,
                Int32, Int32, Int32, Date, Date?, Date?
            ).self
        ).array()
        for row in rows {
            guard let status = ImportStatus(rawValue: row.1), let channel = MessageChannel(rawValue: row.2),
                let format = ImportFormat.allCases.first(where: { formatName($0) == row.4 })
            else { throw UnreadableGroupRows(why: "an import's status, channel or format") }
            summaries.append(
                ImportSummary(
                    id: row.0, status: status, channel: channel, noticeId: row.3, format: format, dryRun: row.5,
                    fileSHA256: row.6.map { Array($0.readableBytesView) }, fileBytes: row.7, sameFileAs: row.8,
                    rowsRead: Int(row.9), rowsRecorded: Int(row.10),
                    counts: [
                        .granted: Int(row.11), .pending: Int(row.12), .superseded: Int(row.13),
                        .suppressed: Int(row.14), .duplicate: Int(row.15), .invalid: Int(row.16),
                    ],
                    createdAt: row.17, receivedAt: row.18, completedAt: row.19))
        }
        return summaries
    }

    static func formatName(_ format: ImportFormat) -> String {
        switch format {
        case .csv: "csv"
        case .ndjson: "ndjson"
        }
    }
}

struct ImportVanished: Error, CustomStringConvertible {
    let id: UUID
    var description: String { "import \(id.lowercased) was deleted while it was received" }
}

/// Who is reading or recording an import: each instance holds its imports under a lease that it renews as it
/// goes; a lease that ran out (its instance died) lets another take the import over.
enum ImportLease {
    static let holder = UUID()
}
