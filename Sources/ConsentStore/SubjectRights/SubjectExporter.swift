import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// Gathers and decrypts everything held about one subject, with the person's audit events proven against the
/// latest signed checkpoint.
public struct SubjectExporter: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring
    let sequencer: AuditSequencer
    let signer: CheckpointSigner

    public init(client: PostgresClient, keyring: TenantKeyring, sequencer: AuditSequencer, signer: CheckpointSigner) {
        self.client = client
        self.keyring = keyring
        self.sequencer = sequencer
        self.signer = signer
    }

    /// Sequences what the tenant has committed, so the person's events so far are in the checkpoint the export
    /// proves against. Call before the export's transaction.
    public func prepare(tenantId: UUID, logger: Logger) async throws {
        try await sequencer.catchUp(tenantId: tenantId, logger: logger)
    }

    /// The export for the person with this identifier, or nil when the tenant holds nobody by it.
    public func export(_ identifier: SubjectIdentifier, tenantId: UUID, logger: Logger) async throws -> SubjectExport? {
        let blindIndex = try await keyring.blindIndex(identifier, tenantId: tenantId, client: client, logger: logger)
        try await prepare(tenantId: tenantId, logger: logger)
        return try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            guard
                let subjectId = try await SubjectDirectory.find(
                    blindIndex: blindIndex, channel: identifier.channel, on: connection, logger: logger)
            else { return nil }
            return try await gather(subjectId: subjectId, tenantId: tenantId, on: connection, logger: logger)
        }
    }

    /// Everything about one subject as of this transaction; nil when the subject has been erased. The request
    /// being answered, if any, is not listed among the pending ones.
    public func gather(
        subjectId: UUID, tenantId: UUID, answering requestId: UUID? = nil, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> SubjectExport? {
        let subjectRows = try await connection.closeSafeQuery(
            """
            SELECT channel, identifier_ciphertext, created_at, last_inbound_at, now(), entry_point_at,
                   marketing_stopped_at
            FROM subjects
            WHERE id = \(subjectId) AND erased_at IS NULL
            """, logger: logger)
        guard
            let (channelText, sealedIdentifier, firstSeenAt, lastInboundAt, now, entryPointAt, marketingStoppedAt) =
                try await subjectRows.decode((String, ByteBuffer, Date, Date?, Date, Date?, Date?).self).array().first,
            let channel = MessageChannel(rawValue: channelText)
        else { return nil }
        let handle = try await SubjectDirectory.open(subjectId, keyring: keyring, on: connection, logger: logger)
        let identifier = try SubjectIdentifier(
            String(
                decoding: try handle.open(Array(sealedIdentifier.readableBytesView), context: "identifier"),
                as: UTF8.self),
            channel: channel)

        let notices = try await notices(subjectId: subjectId, on: connection, logger: logger)
        let evidence = try await evidence(
            subjectId: subjectId, handle: handle, notices: notices, on: connection, logger: logger)
        let consents = try await consents(
            subjectId: subjectId, notices: notices, evidence: evidence, on: connection, logger: logger)
        let interactions = try await interactions(subjectId: subjectId, handle: handle, on: connection, logger: logger)
        let requests = try await SubjectRequests.list(
            subjectId: subjectId, status: .pending, on: connection, logger: logger
        ).filter { $0.id != requestId }.map {
            SubjectExport.Request(
                id: $0.id, type: $0.type, status: $0.status, receivedAt: $0.receivedAt, dueAt: $0.dueAt)
        }

        guard
            let checkpoint = try await StoredCheckpoint.decode(
                connection.closeSafeQuery(
                    """
                    SELECT \(unescaped: StoredCheckpoint.columns) FROM audit_checkpoints
                    WHERE tenant_id = \(tenantId) ORDER BY tree_size DESC LIMIT 1
                    """, logger: logger)
            ).first
        else { throw AuditLogDamaged(problem: "the tenant has no signed checkpoint to prove the export against") }
        let events = try await provenEvents(
            subjectId: subjectId, tenantId: tenantId, treeSize: checkpoint.size, on: connection, logger: logger)
        let tenantName =
            try await connection.closeSafeQuery("SELECT name FROM tenants WHERE id = \(tenantId)", logger: logger)
            .decode(String.self).array().first ?? ""
        return SubjectExport(
            subject: identifier, subjectRef: subjectId, controller: tenantName, firstSeenAt: firstSeenAt,
            exportedAt: now,
            window: ServiceWindow(lastInboundAt: lastInboundAt), consents: consents, interactions: interactions,
            pendingRequests: requests, auditEvents: events,
            checkpoint: SubjectExport.CheckpointReference(
                treeSize: checkpoint.size, rootHash: checkpoint.rootHash, note: checkpoint.note,
                verifierKey: try signer.signer(for: tenantName).verifier.verifierKey),
            entryPointAt: entryPointAt, marketingStoppedAt: marketingStoppedAt,
            importedRows: try await importedRows(subjectId: subjectId, on: connection, logger: logger))
    }

    /// The import rows that recorded the person's opt-ins, each with its proof under its batch's root, computed
    /// from the batch's leaf hashes (kept for every line, `import_rows.leaf_hash`).
    func importedRows(subjectId: UUID, on connection: PostgresConnection, logger: Logger) async throws
        -> [SubjectExport.ImportedRow]
    {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT import_id, line, outcome, batch, row_key FROM import_rows
            WHERE subject_id = \(subjectId) AND batch IS NOT NULL ORDER BY import_id, line
            """, logger: logger
        ).decode((UUID, Int32, String, Int32, ByteBuffer?).self).array()
        var proven: [SubjectExport.ImportedRow] = []
        for (importId, line, outcomeText, batch, rowKey) in rows {
            guard let outcome = ImportOutcome(rawValue: outcomeText) else {
                throw UnreadableGroupRows(why: "import outcome '\(outcomeText)'")
            }
            let batchRows = try await connection.closeSafeQuery(
                """
                SELECT line, leaf_hash FROM import_rows WHERE import_id = \(importId) AND batch = \(batch)
                ORDER BY line
                """, logger: logger
            ).decode((Int32, ByteBuffer).self).array()
            guard let index = batchRows.firstIndex(where: { $0.0 == line }) else { continue }
            let leaves = batchRows.map { Array($0.1.readableBytesView) }
            proven.append(
                SubjectExport.ImportedRow(
                    leaf: ImportLeaf(
                        importId: importId, line: Int(line), outcome: outcome, subjectRef: subjectId,
                        rowKey: rowKey.map { Array($0.readableBytesView) }),
                    batch: Int(batch), leafIndex: index, batchSize: leaves.count,
                    proof: ImportLeaf.proof(index: index, in: leaves)))
        }
        return proven
    }

    func notices(subjectId: UUID, on connection: PostgresConnection, logger: Logger) async throws -> [UUID: Notice] {
        let notices = try await NoticeStore.notices(
            connection.closeSafeQuery(
                """
                SELECT \(unescaped: NoticeStore.columns) FROM notices
                WHERE id IN (SELECT notice_id FROM collections WHERE subject_id = \(subjectId)
                             UNION SELECT notice_id FROM consents WHERE subject_id = \(subjectId))
                """, logger: logger))
        return Dictionary(notices.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Each consent's collections, oldest first, with provenance decrypted.
    func evidence(
        subjectId: UUID, handle: SubjectHandle, notices: [UUID: Notice], on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [UUID: [SubjectExport.Collection]] {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT e.consent_id, k.id, k.notice_id, k.method, k.collected_at, k.received_at, k.provenance_ciphertext
            FROM collections k JOIN consent_evidence e ON e.collection_id = k.id
            WHERE k.subject_id = \(subjectId)
            ORDER BY k.received_at, k.id
            """, logger: logger)
        var evidence: [UUID: [SubjectExport.Collection]] = [:]
        for try await (consentId, id, noticeId, method, collectedAt, receivedAt, sealed) in rows.decode(
            (UUID, UUID, UUID, String, Date, Date, ByteBuffer?).self)
        {
            guard let notice = notices[noticeId], let method = CollectionMethod(rawValue: method) else { continue }
            let provenance = try sealed.map {
                try JSONDecoder().decode(
                    Provenance.self,
                    from: Data(try handle.open(Array($0.readableBytesView), context: "collection:\(id.lowercased)")))
            }
            evidence[consentId, default: []].append(
                SubjectExport.Collection(
                    id: id, notice: notice, method: method, collectedAt: collectedAt, receivedAt: receivedAt,
                    provenance: provenance))
        }
        return evidence
    }

    func consents(
        subjectId: UUID, notices: [UUID: Notice], evidence: [UUID: [SubjectExport.Collection]],
        on connection: PostgresConnection, logger: Logger
    ) async throws -> [SubjectExport.Consent] {
        let rows = try await connection.closeSafeQuery(
            """
            -- The category as it was when the consent was given (sql/migrations/0012), not today's.
            SELECT c.id, c.purpose, coalesce(p.name, c.purpose), coalesce(c.category, p.category, 'utility'),
                   p.tenant_id IS NULL,
                   c.status, c.created_at, c.granted_at, c.revoked_at, c.revoke_source, c.notice_id
            FROM consents c LEFT JOIN purposes p ON p.key = c.purpose
            WHERE c.subject_id = \(subjectId)
            ORDER BY c.created_at, c.purpose, c.id
            """, logger: logger)
        var consents: [SubjectExport.Consent] = []
        for try await (id, key, name, category, builtIn, status, createdAt, grantedAt, revokedAt, source, noticeId)
            in rows.decode(
                (UUID, String, String, String, Bool, String, Date, Date?, Date?, String?, UUID).self)
        {
            guard let notice = notices[noticeId] else { continue }
            consents.append(
                SubjectExport.Consent(
                    id: id,
                    purpose: Purpose(
                        key: key, name: name, category: PurposeCategory(rawValue: category) ?? .utility,
                        builtIn: builtIn),
                    status: status, createdAt: createdAt, grantedAt: grantedAt, revokedAt: revokedAt,
                    revokeSource: source.flatMap(RevocationSource.init(rawValue:)), notice: notice,
                    evidence: evidence[id] ?? []))
        }
        return consents
    }

    func interactions(subjectId: UUID, handle: SubjectHandle, on connection: PostgresConnection, logger: Logger)
        async throws -> [SubjectExport.Interaction]
    {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT id, kind, occurred_at, received_at, text_ciphertext FROM interactions
            WHERE subject_id = \(subjectId) ORDER BY occurred_at, id
            """, logger: logger)
        var interactions: [SubjectExport.Interaction] = []
        for try await (id, kind, occurredAt, receivedAt, sealed) in rows.decode(
            (UUID, String, Date, Date, ByteBuffer?).self)
        {
            let text = try sealed.map {
                String(
                    decoding: try handle.open(Array($0.readableBytesView), context: "interaction:\(id.lowercased)"),
                    as: UTF8.self)
            }
            interactions.append(
                SubjectExport.Interaction(
                    id: id, kind: kind, occurredAt: occurredAt, receivedAt: receivedAt, text: text))
        }
        return interactions
    }

    /// The subject's sequenced events below `treeSize`, each with PATH(seq, D[treeSize]) built from the stored
    /// subtrees fetched in one query for all of them. They include the events of the subjects merged into this one
    /// (`subject.merged` names each by `mergedSubjectRef`, and a merged subject may have had others merged into it):
    /// the merge moved their consents here, and the person's history is the whole of it.
    func provenEvents(
        subjectId: UUID, tenantId: UUID, treeSize: Int64, on connection: PostgresConnection, logger: Logger
    )
        async throws -> [SubjectExport.ProvenEvent]
    {
        let events = try await AuditRows.sequencedEvents(
            connection.closeSafeQuery(
                """
                WITH RECURSIVE refs (id) AS (
                    SELECT \(subjectId)::uuid
                    UNION
                    SELECT (m.data->>'mergedSubjectRef')::uuid
                    FROM audit_events m JOIN refs r ON m.subject_ref = r.id
                    WHERE m.tenant_id = \(tenantId) AND m.action = 'subject.merged'
                )
                SELECT \(unescaped: AuditRows.sequencedEventColumns)
                FROM audit_events e
                JOIN audit_leaves l ON l.event_id = e.id
                JOIN audit_nodes n ON n.tenant_id = l.tenant_id AND n.level = 0 AND n.idx = l.seq
                WHERE e.tenant_id = \(tenantId) AND l.seq < \(treeSize)
                  AND (e.subject_ref IN (SELECT id FROM refs)
                       -- the batch events that commit to the person's imported rows (importedRows)
                       OR (e.action = 'import.batch_recorded'
                           AND (e.data->>'importId', (e.data->>'batch')::int) IN (
                               SELECT r.import_id::text, r.batch FROM import_rows r
                               WHERE r.subject_id IN (SELECT id FROM refs) AND r.batch IS NOT NULL)))
                ORDER BY l.seq
                """, logger: logger))
        let ranges = events.map { MerkleTree.inclusionProofRanges(index: $0.record.seq, size: treeSize) }
        let nodes = try await AuditRows.nodes(
            Set(ranges.flatMap { MerkleTree.subtrees(for: $0) }), tenantId: tenantId, on: connection, logger: logger)
        return try zip(events, ranges).map { event, ranges in
            let proof = try AuditRows.proof(ranges, nodes: nodes)
            return SubjectExport.ProvenEvent(record: event.record, leafHash: event.leafHash, inclusionProof: proof)
        }
    }
}
