import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// Turns queued audit events into the tenant's Merkle log: assigns `seq`, stores leaf and perfect-subtree hashes,
/// and signs a checkpoint, one transaction per batch. Writers never wait for it: they only insert events.
///
/// Passes for one tenant are serialised by a transaction-level advisory lock, so a pass run on demand (an API
/// call, a command) and the leader's periodic pass cannot interleave; the primary key on (tenant, seq) and the
/// contiguity trigger make even a pass that skipped the lock fail rather than fork or leave a gap.
public struct AuditSequencer: Sendable {
    let client: PostgresClient
    let signer: CheckpointSigner
    let batchSize: Int

    /// Advisory lock class for per-tenant passes (the second key is the tenant's hash).
    static let passLockClass: Int32 = 0x6175_6469  // "audi"

    public init(client: PostgresClient, signer: CheckpointSigner, batchSize: Int = 5000) {
        self.client = client
        self.signer = signer
        self.batchSize = batchSize
    }

    /// Sequences every tenant's queued events; returns how many it sequenced.
    @discardableResult
    public func sequenceAll(logger: Logger) async throws -> Int {
        let tenants = try await client.withOperatorTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery("SELECT DISTINCT tenant_id FROM audit_unsequenced", logger: logger)
                .decode(UUID.self).array()
        }
        var total = 0
        for tenant in tenants { total += try await sequence(tenantId: tenant, logger: logger) }
        return total
    }

    /// Sequences one tenant's queued events, batch by batch; returns how many it sequenced.
    @discardableResult
    public func sequence(tenantId: UUID, logger: Logger) async throws -> Int {
        var total = 0
        while true {
            let count = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                try await sequenceBatch(tenantId: tenantId, on: connection, logger: logger)
            }
            total += count
            if count < batchSize { return total }
        }
    }

    /// For a read that must cover everything the tenant committed before it: sequences only when events are
    /// queued, so a read on a current log never waits for the per-tenant lock.
    public func catchUp(tenantId: UUID, logger: Logger) async throws {
        let queued = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await connection.closeSafeQuery(
                "SELECT EXISTS (SELECT 1 FROM audit_unsequenced WHERE tenant_id = \(tenantId))", logger: logger
            ).decode(Bool.self).array().first ?? false
        }
        guard queued else { return }
        // A pass gives up on the tenant's lock after 5 s (below); a reader waits for the pass that holds it, which
        // is sequencing the same events, rather than failing: a few tries, then the error.
        for attempt in 1...3 {
            do {
                try await sequence(tenantId: tenantId, logger: logger)
                return
            } catch  where DatabaseErrors.sqlState(error) == "55P03" && attempt < 3 {
                logger.info("audit sequencer: a reader waited for another pass", metadata: ["attempt": "\(attempt)"])
            }
        }
    }

    func sequenceBatch(tenantId: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        // A pass never waits long for another: a timed-out pass changes nothing and the next one retries, and a
        // server shutting down is not held up by a query it cannot cancel.
        try await connection.closeSafeQuery("SET LOCAL lock_timeout = '5s'", logger: logger)
        // Read to the end: the driver answers a query once its row description arrives, so a lock timeout raised
        // while waiting would otherwise reach no one, and the next statement would meet an aborted transaction
        // (25P02) instead (clean-clone CI at f12d293, under load).
        _ = try await connection.closeSafeQuery(
            "SELECT pg_advisory_xact_lock(\(Self.passLockClass), hashtext(\(tenantId.uuidString)))", logger: logger
        ).collect()
        let taken = try await connection.closeSafeQuery(
            """
            WITH taken AS (
                DELETE FROM audit_unsequenced
                WHERE event_id IN (SELECT event_id FROM audit_unsequenced WHERE tenant_id = \(tenantId)
                                   ORDER BY event_id LIMIT \(batchSize))
                RETURNING event_id)
            SELECT e.id, \(unescaped: AuditRows.atText), e.action, e.actor, e.subject_ref, e.data::text
            FROM audit_events e JOIN taken t ON t.event_id = e.id
            ORDER BY e.id
            """, logger: logger
        ).decode((Int64, String, String, String, UUID?, String).self).array()
        guard !taken.isEmpty else { return 0 }

        var frontier = try await AuditRows.frontier(tenantId: tenantId, on: connection, logger: logger)
        var seqs: [Int64] = []
        var eventIds: [Int64] = []
        var levels: [Int16] = []
        var indexes: [Int64] = []
        var hashes: [ByteBuffer] = []
        for (eventId, at, action, actor, subjectRef, data) in taken {
            let record = AuditRecord(
                seq: frontier.size, at: at, action: action, actor: actor, subjectRef: subjectRef,
                data: try AuditRows.data(data))
            seqs.append(record.seq)
            eventIds.append(eventId)
            for (subtree, hash) in frontier.append(try record.leafHash()) {
                levels.append(Int16(subtree.level))
                indexes.append(subtree.index)
                hashes.append(ByteBuffer(bytes: hash))
            }
        }
        try await connection.closeSafeQuery(
            """
            INSERT INTO audit_leaves (tenant_id, seq, event_id)
            SELECT \(tenantId), l.seq, l.event_id FROM unnest(\(seqs)::int8[], \(eventIds)::int8[]) AS l(seq, event_id)
            ORDER BY l.seq
            """, logger: logger)
        try await connection.closeSafeQuery(
            """
            INSERT INTO audit_nodes (tenant_id, level, idx, hash)
            SELECT \(tenantId), n.level, n.idx, n.hash
            FROM unnest(\(levels)::int2[], \(indexes)::int8[], \(hashes)::bytea[]) AS n(level, idx, hash)
            """, logger: logger)

        let name =
            try await connection.closeSafeQuery("SELECT name FROM tenants WHERE id = \(tenantId)", logger: logger)
            .decode(String.self).array().first ?? tenantId.lowercased
        let root = frontier.root
        let note = try signer.sign(tenant: name, size: frontier.size, rootHash: root)
        try await connection.closeSafeQuery(
            """
            INSERT INTO audit_checkpoints (tenant_id, tree_size, root_hash, origin, note, public_key)
            VALUES (\(tenantId), \(frontier.size), \(ByteBuffer(bytes: root)), \(signer.origin(for: name)), \(note),
                    \(ByteBuffer(bytes: signer.publicKey)))
            """, logger: logger)
        logger.debug("audit events sequenced", metadata: ["count": "\(taken.count)", "treeSize": "\(frontier.size)"])
        return taken.count
    }
}

/// SQL shared by the sequencer, the reader and the verifier, so the three read events the same way.
enum AuditRows {
    /// The event time as the text that is hashed: RFC 3339, UTC, milliseconds.
    static let atText = #"to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"#

    static func data(_ text: String) throws -> [String: JSONValue] {
        guard case .object(let members) = try JSONValue.parse(text) else { throw MalformedEventData() }
        return members
    }

    struct MalformedEventData: Error {}

    static func treeSize(tenantId: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Int64 {
        try await connection.closeSafeQuery(
            "SELECT coalesce(max(seq) + 1, 0)::int8 FROM audit_leaves WHERE tenant_id = \(tenantId)", logger: logger
        ).decode(Int64.self).array().first ?? 0
    }

    /// A sequenced event with its stored leaf hash, from `audit_leaves l`, `audit_events e` and `audit_nodes n`
    /// (level 0) joined on the leaf.
    static let sequencedEventColumns = "l.seq, \(atText), e.action, e.actor, e.subject_ref, e.data::text, n.hash"

    static func sequencedEvents(_ rows: StoreRows) async throws -> [SequencedEvent] {
        var events: [SequencedEvent] = []
        for try await (seq, at, action, actor, subjectRef, data, hash) in rows.decode(
            (Int64, String, String, String, UUID?, String, ByteBuffer).self)
        {
            let record = AuditRecord(
                seq: seq, at: at, action: action, actor: actor, subjectRef: subjectRef, data: try Self.data(data))
            events.append(SequencedEvent(record: record, leafHash: Array(hash.readableBytesView)))
        }
        return events
    }

    /// A proof's hashes, one per range, each composed from the stored perfect subtrees that cover it.
    static func proof(_ ranges: [Range<Int64>], nodes: [Subtree: [UInt8]]) throws -> [[UInt8]] {
        try ranges.map { range in
            try MerkleTree.hash(of: range) { (subtree) throws(AuditLogDamaged) in
                guard let hash = nodes[subtree] else {
                    throw AuditLogDamaged(problem: "the stored hash of \(subtree) is missing")
                }
                return hash
            }
        }
    }

    /// The stored perfect subtrees asked for, by subtree.
    static func nodes(
        _ subtrees: some Collection<Subtree>, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> [Subtree: [UInt8]] {
        guard !subtrees.isEmpty else { return [:] }
        let levels = subtrees.map { Int16($0.level) }
        let indexes = subtrees.map(\.index)
        let rows = try await connection.closeSafeQuery(
            """
            SELECT n.level, n.idx, n.hash
            FROM unnest(\(levels)::int2[], \(indexes)::int8[]) AS wanted(level, idx)
            JOIN audit_nodes n ON n.tenant_id = \(tenantId) AND n.level = wanted.level AND n.idx = wanted.idx
            """, logger: logger)
        var found: [Subtree: [UInt8]] = [:]
        for try await (level, index, hash) in rows.decode((Int16, Int64, ByteBuffer).self) {
            found[Subtree(level: Int(level), index: index)] = Array(hash.readableBytesView)
        }
        return found
    }

    static func frontier(tenantId: UUID, on connection: PostgresConnection, logger: Logger) async throws
        -> MerkleFrontier
    {
        let size = try await treeSize(tenantId: tenantId, on: connection, logger: logger)
        let subtrees = MerkleFrontier.subtrees(forSize: size)
        let found = try await nodes(subtrees, tenantId: tenantId, on: connection, logger: logger)
        guard let frontier = MerkleFrontier(size: size, hashes: subtrees.compactMap { found[$0] }) else {
            throw AuditLogDamaged(problem: "the stored subtree hashes of a tree of \(size) leaves are incomplete")
        }
        return frontier
    }
}

/// The stored log is not what the sequencer wrote: `consentd audit verify` says where.
public struct AuditLogDamaged: Error, CustomStringConvertible {
    public let problem: String
    public var description: String { "the audit log is damaged: \(problem); run `consentd audit verify`" }
}
