import ConsentCore
import Foundation
import Logging
import PostgresNIO

public struct RotationReport: Sendable, Equatable {
    public var tenantKeys = 0
    public var subjectKeys = 0
    /// The keys of imports still being recorded (their unrecorded chunks are sealed under them).
    public var importKeys = 0
    /// Keys that no configured master opens: left as they are and named by count, so the operator can find the
    /// master that wrapped them before retiring anything.
    public var unreadable = 0
    /// Keys still not under the new master when the run ended (the unreadable ones, and any an erasure held
    /// locked that did not go away): zero means the old master can be retired.
    public var remaining = 0
    public init() {}
}

/// Re-wraps every stored key under the keyring's wrapping master, in short per-tenant batches, so servers keep
/// serving throughout: a server that can unwrap with both the old and the new master reads keys in either state.
/// Ciphertexts are not touched (the keys they are sealed under do not change). Safe to interrupt and run again:
/// it only picks keys not yet under the new master.
public struct MasterKeyRotation: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let batchSize: Int

    public init(client: PostgresClient, keyring: TenantKeyring, batchSize: Int = 500) {
        self.client = client
        self.keyring = keyring
        self.batchSize = batchSize
    }

    public func run(logger: Logger) async throws -> RotationReport {
        let tenants = try await TenantStore.ids(client: client, logger: logger)
        var report = RotationReport()
        for tenant in tenants {
            try await rotateTenantKeys(tenant, into: &report, logger: logger)
            try await rotateSubjectKeys(tenant, into: &report, logger: logger)
            try await rotateImportKeys(tenant, into: &report, logger: logger)
            report.remaining += try await client.withTenantTransaction(tenant, logger: logger) { connection in
                let master = ByteBuffer(bytes: keyring.masterId)
                return try await connection.closeSafeQuery(
                    """
                    SELECT (SELECT count(*) FROM tenant_keys WHERE tenant_id = \(tenant) AND master_key_id IS DISTINCT FROM \(master))
                         + (SELECT count(*) FROM subject_keys WHERE tenant_id = \(tenant) AND master_key_id IS DISTINCT FROM \(master))
                         + (SELECT count(*) FROM imports WHERE tenant_id = \(tenant) AND wrapped_key IS NOT NULL
                              AND master_key_id IS DISTINCT FROM \(master))
                    """, logger: logger
                ).decode(Int.self).array().first ?? 0
            }
        }
        return report
    }

    func rotateTenantKeys(_ tenantId: UUID, into report: inout RotationReport, logger: Logger) async throws {
        let master = ByteBuffer(bytes: keyring.masterId)
        let (rotated, unreadable) = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT purpose, wrapped_key, master_key_id FROM tenant_keys
                WHERE tenant_id = \(tenantId) AND master_key_id IS DISTINCT FROM \(master)
                FOR UPDATE
                """, logger: logger)
            var rotated = 0
            var unreadable = 0
            for (purpose, wrapped, wrappedBy) in try await rows.decode((String, ByteBuffer, ByteBuffer?).self).array() {
                guard
                    let rewrapped = rewrap(
                        wrapped, wrappedBy, context: TenantKeyring.tenantKeyContext(tenantId, purpose))
                else {
                    unreadable += 1
                    continue
                }
                try await connection.closeSafeQuery(
                    """
                    UPDATE tenant_keys SET wrapped_key = \(rewrapped), master_key_id = \(master)
                    WHERE tenant_id = \(tenantId) AND purpose = \(purpose)
                    """, logger: logger)
                rotated += 1
            }
            return (rotated, unreadable)
        }
        report.tenantKeys += rotated
        report.unreadable += unreadable
    }

    /// An import's key lives only until its last chunk is recorded; one that is running is re-wrapped between two
    /// of its chunks (a worker recording one holds the import's row, and is skipped until the next run).
    func rotateImportKeys(_ tenantId: UUID, into report: inout RotationReport, logger: Logger) async throws {
        let master = ByteBuffer(bytes: keyring.masterId)
        let (rotated, unreadable) = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT id, wrapped_key, master_key_id FROM imports
                WHERE tenant_id = \(tenantId) AND wrapped_key IS NOT NULL AND master_key_id IS DISTINCT FROM \(master)
                FOR UPDATE SKIP LOCKED
                """, logger: logger)
            var rotated = 0
            var unreadable = 0
            for (importId, wrapped, wrappedBy) in try await rows.decode((UUID, ByteBuffer, ByteBuffer?).self).array() {
                guard let rewrapped = rewrap(wrapped, wrappedBy, context: TenantKeyring.importKeyContext(importId))
                else {
                    unreadable += 1
                    continue
                }
                try await connection.closeSafeQuery(
                    """
                    UPDATE imports SET wrapped_key = \(rewrapped), master_key_id = \(master)
                    WHERE id = \(importId)
                    """, logger: logger)
                rotated += 1
            }
            return (rotated, unreadable)
        }
        report.importKeys += rotated
        report.unreadable += unreadable
    }

    /// Batches in subject order: each transaction locks at most `batchSize` key rows (an erasure of one of them
    /// waits for that batch only) and skips any a concurrent erasure already holds.
    func rotateSubjectKeys(_ tenantId: UUID, into report: inout RotationReport, logger: Logger) async throws {
        let master = ByteBuffer(bytes: keyring.masterId)
        var after = UUID(uuidString: "00000000-0000-0000-0000-000000000000")!
        while true {
            let (rotated, unreadable, last) = try await client.withTenantTransaction(tenantId, logger: logger) {
                connection in
                let rows = try await connection.closeSafeQuery(
                    """
                    SELECT subject_id, wrapped_key, master_key_id FROM subject_keys
                    WHERE tenant_id = \(tenantId) AND master_key_id IS DISTINCT FROM \(master) AND subject_id > \(after)
                    ORDER BY subject_id LIMIT \(batchSize)
                    FOR UPDATE SKIP LOCKED
                    """, logger: logger)
                var ids: [UUID] = []
                var wrappedKeys: [ByteBuffer] = []
                var unreadable = 0
                var last: UUID?
                for (subjectId, wrapped, wrappedBy) in try await rows.decode((UUID, ByteBuffer, ByteBuffer?).self)
                    .array()
                {
                    last = subjectId
                    guard
                        let rewrapped = rewrap(wrapped, wrappedBy, context: TenantKeyring.subjectKeyContext(subjectId))
                    else {
                        unreadable += 1
                        continue
                    }
                    ids.append(subjectId)
                    wrappedKeys.append(rewrapped)
                }
                if !ids.isEmpty {
                    try await connection.closeSafeQuery(
                        """
                        UPDATE subject_keys k SET wrapped_key = r.wrapped, master_key_id = \(master)
                        FROM unnest(\(ids)::uuid[], \(wrappedKeys)::bytea[]) AS r(subject_id, wrapped)
                        WHERE k.subject_id = r.subject_id
                        """, logger: logger)
                }
                return (ids.count, unreadable, last)
            }
            report.subjectKeys += rotated
            report.unreadable += unreadable
            guard let last else { return }
            after = last
        }
    }

    /// A stored wrapped key under the keyring's wrapping master; nil when no configured master opens it.
    private func rewrap(_ wrapped: ByteBuffer, _ wrappedBy: ByteBuffer?, context: String) -> ByteBuffer? {
        (try? keyring.rewrap(
            Array(wrapped.readableBytesView), wrappedBy: wrappedBy.map { Array($0.readableBytesView) },
            context: context)).map { ByteBuffer(bytes: $0) }
    }
}
