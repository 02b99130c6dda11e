import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// What a re-indexing run did, in counts only: identifiers never reach output.
public struct ReindexReport: Sendable, Equatable {
    /// Subjects moved to the blind index of their address under today's normalisation.
    public var reindexed = 0
    /// Subjects merged into the subject that already held their new blind index.
    public var merged = 0
    /// Subjects whose stored address today's rules refuse (an `xn--` label that is not Punycode, a label too long
    /// once converted): left under their old index, which nothing computes any more.
    public var refused = 0
    /// Subjects whose data key or identifier no configured master key opens: left as they are.
    public var unreadable = 0
    public init() {}
}

/// Moves every e-mail subject stored under an earlier build's normalisation to today's (issue 21, finding 7: case,
/// NFC and IDNA made one person several subjects). For each tenant and each e-mail subject it opens the identifier,
/// normalises it again and computes the blind index: unchanged, nothing to do; held by nobody, the subject moves to
/// it (`app_reindex_subject`); held by another subject, this one is merged into that one, the existing holder,
/// which survives (`app_merge_subject`, sql/migrations/0013).
///
/// Subjects are read in batches and decided outside any transaction; each one that moves gets a transaction of its
/// own that locks it and decides again, so servers keep serving, a run can be interrupted, and running it again (or
/// two at once) changes nothing more.
public struct SubjectReindexer: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let batchSize: Int

    public init(client: PostgresClient, keyring: TenantKeyring, batchSize: Int = 500) {
        self.client = client
        self.keyring = keyring
        self.batchSize = batchSize
    }

    public func run(logger: Logger) async throws -> ReindexReport {
        var report = ReindexReport()
        for tenant in try await TenantStore.ids(client: client, logger: logger) {
            try await reindexTenant(tenant, into: &report, logger: logger)
        }
        return report
    }

    /// How many e-mail subjects are held: what `consentd migrate` reports when it has no master key to re-index with.
    public static func heldEmailSubjects(client: PostgresClient, logger: Logger) async throws -> Int {
        var held = 0
        for tenant in try await TenantStore.ids(client: client, logger: logger) {
            held += try await client.withTenantTransaction(tenant, logger: logger) { connection in
                try await connection.closeSafeQuery(
                    "SELECT count(*)::int FROM subjects WHERE channel = 'email' AND erased_at IS NULL", logger: logger
                ).decode(Int.self).array().first ?? 0
            }
        }
        return held
    }

    /// An e-mail subject as stored, with its data key still wrapped.
    private struct Stored {
        let id: UUID
        let blindIndex: [UInt8]?
        let identifier: [UInt8]?
        let wrappedKey: [UInt8]
        let wrappedBy: [UInt8]?
    }

    /// The tenant's keyed-hash keys, loaded only for a tenant that has e-mail subjects (none is made for others).
    private struct HashKeys {
        let blindIndex: SymmetricKey
        let suppression: SymmetricKey
    }

    private enum Decision {
        case unchanged
        case refused
        case unreadable
        /// The identifier as stored (the earlier build's normal form) and as normalised today, and today's index.
        case move(handle: SubjectHandle, stored: String, identifier: SubjectIdentifier, blindIndex: [UInt8])
    }

    private func reindexTenant(_ tenantId: UUID, into report: inout ReindexReport, logger: Logger) async throws {
        var after = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        var keys: HashKeys?
        while true {
            let batch = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                let rows = try await connection.closeSafeQuery(
                    """
                    SELECT s.id, s.blind_index, s.identifier_ciphertext, k.wrapped_key, k.master_key_id
                    FROM subjects s JOIN subject_keys k ON k.subject_id = s.id
                    WHERE s.channel = 'email' AND s.erased_at IS NULL AND s.id > \(after)
                    ORDER BY s.id LIMIT \(batchSize)
                    """, logger: logger)
                var batch: [Stored] = []
                for try await (id, index, identifier, wrapped, wrappedBy) in rows.decode(
                    (UUID, ByteBuffer?, ByteBuffer?, ByteBuffer, ByteBuffer?).self)
                {
                    batch.append(
                        Stored(
                            id: id, blindIndex: index.map { Array($0.readableBytesView) },
                            identifier: identifier.map { Array($0.readableBytesView) },
                            wrappedKey: Array(wrapped.readableBytesView),
                            wrappedBy: wrappedBy.map { Array($0.readableBytesView) }))
                }
                return batch
            }
            guard let last = batch.last else { return }
            after = last.id
            let hashKeys: HashKeys
            if let keys {
                hashKeys = keys
            } else {
                hashKeys = try await loadKeys(tenantId, logger: logger)
                keys = hashKeys
            }
            for subject in batch {
                switch decide(subject, keys: hashKeys) {
                case .unchanged: continue
                case .refused: report.refused += 1
                case .unreadable: report.unreadable += 1
                case .move(let handle, let stored, let identifier, let blindIndex):
                    switch try await move(
                        handle, stored: stored, to: identifier, blindIndex: blindIndex, keys: hashKeys,
                        tenantId: tenantId, logger: logger)
                    {
                    case .unchanged: continue
                    case .refused: report.refused += 1
                    case .unreadable: report.unreadable += 1
                    case .reindexed: report.reindexed += 1
                    case .merged: report.merged += 1
                    }
                }
            }
        }
    }

    private func loadKeys(_ tenantId: UUID, logger: Logger) async throws -> HashKeys {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            HashKeys(
                blindIndex: try await keyring.tenantKey(
                    .blindIndex, tenantId: tenantId, on: connection, logger: logger),
                suppression: try await keyring.tenantKey(
                    .suppression, tenantId: tenantId, on: connection, logger: logger))
        }
    }

    private func decide(_ subject: Stored, keys: HashKeys) -> Decision {
        guard
            let dataKey = try? keyring.unwrapSubjectKey(
                subject.wrappedKey, wrappedBy: subject.wrappedBy, subjectId: subject.id),
            let sealed = subject.identifier
        else { return .unreadable }
        let handle = SubjectHandle(id: subject.id, dataKey: dataKey)
        guard let opened = try? handle.open(sealed, context: "identifier") else { return .unreadable }
        let stored = String(decoding: opened, as: UTF8.self)
        guard let identifier = try? SubjectIdentifier(stored, channel: .email) else { return .refused }
        let blindIndex = BlindIndex.compute(identifier, key: keys.blindIndex)
        guard blindIndex != subject.blindIndex else { return .unchanged }
        return .move(handle: handle, stored: stored, identifier: identifier, blindIndex: blindIndex)
    }

    private enum Outcome: Sendable {
        case unchanged, refused, unreadable, reindexed, merged
    }

    /// One subject in one transaction. A write that makes a subject under the new index between this transaction's
    /// look and its update fails it on the unique index; the next attempt finds that subject and merges into it.
    private func move(
        _ handle: SubjectHandle, stored: String, to identifier: SubjectIdentifier, blindIndex: [UInt8],
        keys: HashKeys, tenantId: UUID, logger: Logger
    ) async throws -> Outcome {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                    try await moveLocked(
                        handle, stored: stored, to: identifier, blindIndex: blindIndex, keys: keys,
                        tenantId: tenantId, on: connection, logger: logger)
                }
            } catch  where DatabaseErrors.sqlState(error) == DatabaseErrors.uniqueViolation && attempt < 3 {
                continue
            } catch is FieldCipher.OpenFailed {
                return .unreadable
            } catch is TenantKeyring.KeyUnreadable {
                return .unreadable
            }
        }
    }

    private func moveLocked(
        _ handle: SubjectHandle, stored: String, to identifier: SubjectIdentifier, blindIndex: [UInt8],
        keys: HashKeys, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> Outcome {
        // Locked and read again: another run may have moved or merged it since the batch was read.
        let current = try await connection.closeSafeQuery(
            "SELECT blind_index FROM subjects WHERE id = \(handle.id) AND erased_at IS NULL FOR UPDATE",
            logger: logger
        ).decode(ByteBuffer?.self).array()
        guard let index = current.first, index.map({ Array($0.readableBytesView) }) != blindIndex else {
            return .unchanged
        }
        try await carrySuppression(
            from: stored, to: identifier, key: keys.suppression, tenantId: tenantId, on: connection, logger: logger)
        if let index {
            // The person's idempotency records follow them, so that erasing them under the new index deletes these.
            try await connection.closeSafeQuery(
                """
                UPDATE idempotency_keys
                SET subject_refs = array_replace(subject_refs, \(index), \(ByteBuffer(bytes: blindIndex)))
                WHERE subject_refs @> ARRAY[\(index)]::bytea[]
                """, logger: logger)
        }
        let holder = try await SubjectDirectory.find(
            blindIndex: blindIndex, channel: .email, on: connection, logger: logger)
        guard let holder else {
            _ = try await connection.closeSafeQuery(
                "SELECT app_reindex_subject(\(tenantId), \(handle.id), \(ByteBuffer(bytes: blindIndex)))",
                logger: logger
            ).collect()
            return .reindexed
        }
        let survivor = try await SubjectDirectory.open(holder, keyring: keyring, on: connection, logger: logger)
        for sealed in Self.sealedColumns {
            try await reseal(sealed, from: handle, to: survivor, on: connection, logger: logger)
        }
        _ = try await connection.closeSafeQuery(
            "SELECT app_merge_subject(\(tenantId), \(handle.id), \(holder))", logger: logger
        ).collect()
        return .merged
    }

    /// The ciphertexts sealed under a subject's data key besides its identifier, and the context each is bound to
    /// (`<subject id>:<prefix><row id>`, see `SubjectHandle`). A merge opens the duplicate's and seals them again
    /// under the survivor's key and id. A column added elsewhere must be added here too.
    private static let sealedColumns: [(table: String, column: String, context: String)] = [
        ("collections", "provenance_ciphertext", "collection:"),
        ("interactions", "text_ciphertext", "interaction:"),
        ("consent_sessions", "page_url_ciphertext", "consent-session:"),
    ]

    private func reseal(
        _ sealed: (table: String, column: String, context: String), from duplicate: SubjectHandle,
        to survivor: SubjectHandle, on connection: PostgresConnection, logger: Logger
    ) async throws {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT id, \(unescaped: sealed.column) FROM \(unescaped: sealed.table)
            WHERE subject_id = \(duplicate.id) AND \(unescaped: sealed.column) IS NOT NULL
            FOR UPDATE
            """, logger: logger)
        var ids: [UUID] = []
        var resealed: [ByteBuffer] = []
        for try await (id, ciphertext) in rows.decode((UUID, ByteBuffer).self) {
            let context = sealed.context + id.lowercased
            let plaintext = try duplicate.open(Array(ciphertext.readableBytesView), context: context)
            ids.append(id)
            resealed.append(ByteBuffer(bytes: survivor.seal(plaintext, context: context)))
        }
        guard !ids.isEmpty else { return }
        try await connection.closeSafeQuery(
            """
            UPDATE \(unescaped: sealed.table) t SET \(unescaped: sealed.column) = r.sealed
            FROM unnest(\(ids)::uuid[], \(resealed)::bytea[]) AS r(id, sealed)
            WHERE t.id = r.id
            """, logger: logger)
    }

    /// A suppression entry is a keyed hash of the normalised identifier, so one made under the earlier form would
    /// no longer match the person: it is copied under today's form (widened, never narrowed, as `app_object` does;
    /// its first reason and time stay). The old entry stays too, for servers still running the earlier build.
    private func carrySuppression(
        from stored: String, to identifier: SubjectIdentifier, key: SymmetricKey, tenantId: UUID,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        let old = SuppressionHash.compute(
            SubjectIdentifier(storedByEarlierBuild: stored, channel: identifier.channel), key: key)
        let new = SuppressionHash.compute(identifier, key: key)
        guard old != new else { return }
        try await connection.closeSafeQuery(
            """
            INSERT INTO suppressions (tenant_id, keyed_hash, reason, scope, stopped_at, created_at)
            SELECT tenant_id, \(ByteBuffer(bytes: new)), reason, scope, stopped_at, created_at FROM suppressions
            WHERE tenant_id = \(tenantId) AND keyed_hash = \(ByteBuffer(bytes: old))
            ON CONFLICT (tenant_id, keyed_hash) DO UPDATE
                SET scope = CASE WHEN suppressions.scope = 'all' OR excluded.scope = 'all' THEN 'all' ELSE 'marketing' END,
                    stopped_at = greatest(suppressions.stopped_at, excluded.stopped_at)
            """, logger: logger)
    }
}
