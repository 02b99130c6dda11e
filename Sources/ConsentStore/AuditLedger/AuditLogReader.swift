import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A sequenced event with the leaf hash stored for it.
public struct SequencedEvent: Sendable, Equatable {
    public let record: AuditRecord
    public let leafHash: [UInt8]
}

/// A checkpoint as issued: the signed note and the fields it signs.
public struct StoredCheckpoint: Sendable, Equatable {
    public let size: Int64
    public let rootHash: [UInt8]
    public let origin: String
    public let note: String
    public let publicKey: [UInt8]
    public let issuedAt: Date

    static let columns = "tree_size, root_hash, origin, note, public_key, issued_at"

    /// Rows selected as `columns`.
    static func decode(_ rows: StoreRows) async throws -> [StoredCheckpoint] {
        try await rows.decode((Int64, ByteBuffer, String, String, ByteBuffer, Date).self).array().map {
            StoredCheckpoint(
                size: $0.0, rootHash: Array($0.1.readableBytesView), origin: $0.2, note: $0.3,
                publicKey: Array($0.4.readableBytesView), issuedAt: $0.5)
        }
    }
}

public enum AuditProofError: Error, Equatable {
    /// The requested size is larger than the tree (the current size is given).
    case beyondTree(Int64)
    case invalidRange(String)
}

/// Which events a page or a report covers: seq after a position and below a checkpoint, optionally by time.
public struct AuditEventFilter: Sendable {
    public var after: Int64?
    public var below: Int64?
    public var from: Date?
    public var to: Date?

    public init(after: Int64? = nil, below: Int64? = nil, from: Date? = nil, to: Date? = nil) {
        self.after = after
        self.below = below
        self.from = from
        self.to = to
    }
}

/// The read side of the audit log: pages of events, checkpoints, proofs from stored subtrees, report counts.
public struct AuditLogReader: Sendable {
    public let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func latestCheckpoint(tenantId: UUID, logger: Logger) async throws -> StoredCheckpoint? {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await StoredCheckpoint.decode(
                connection.closeSafeQuery(
                    """
                    SELECT \(unescaped: StoredCheckpoint.columns) FROM audit_checkpoints
                    WHERE tenant_id = \(tenantId) ORDER BY tree_size DESC LIMIT 1
                    """, logger: logger)
            ).first
        }
    }

    /// Up to `limit` events in seq order.
    public func events(
        tenantId: UUID, filter: AuditEventFilter, limit: Int, logger: Logger
    ) async throws -> [SequencedEvent] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.page(tenantId: tenantId, filter: filter, limit: limit, on: connection, logger: logger)
        }
    }

    /// Every matching event, a page at a time, so memory stays constant however long the log is.
    public func forEachPage(
        tenantId: UUID, filter: AuditEventFilter, pageSize: Int = 1000, logger: Logger,
        _ body: ([SequencedEvent]) async throws -> Void
    ) async throws {
        var filter = filter
        while true {
            let page = try await events(tenantId: tenantId, filter: filter, limit: pageSize, logger: logger)
            if !page.isEmpty { try await body(page) }
            guard page.count == pageSize, let last = page.last else { return }
            filter.after = last.record.seq
        }
    }

    static func page(
        tenantId: UUID, filter: AuditEventFilter, limit: Int, on connection: PostgresConnection, logger: Logger
    ) async throws -> [SequencedEvent] {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT \(unescaped: AuditRows.sequencedEventColumns)
            FROM audit_leaves l
            JOIN audit_events e ON e.id = l.event_id
            JOIN audit_nodes n ON n.tenant_id = l.tenant_id AND n.level = 0 AND n.idx = l.seq
            WHERE l.tenant_id = \(tenantId) AND l.seq > \(filter.after ?? -1) AND l.seq < \(filter.below ?? Int64.max)
              AND (\(filter.from)::timestamptz IS NULL OR e.at >= \(filter.from))
              AND (\(filter.to)::timestamptz IS NULL OR e.at < \(filter.to))
            ORDER BY l.seq
            LIMIT \(limit)
            """, logger: logger)
        return try await AuditRows.sequencedEvents(rows)
    }

    /// RFC 9162 PATH(seq, D[treeSize]) from stored subtree hashes.
    public func inclusionProof(tenantId: UUID, seq: Int64, treeSize: Int64, logger: Logger) async throws -> [[UInt8]] {
        guard treeSize > 0 else { throw AuditProofError.invalidRange("treeSize must be at least 1") }
        guard 0 <= seq, seq < treeSize else { throw AuditProofError.invalidRange("seq must be from 0 to treeSize - 1") }
        return try await proof(
            tenantId: tenantId, size: treeSize, ranges: MerkleTree.inclusionProofRanges(index: seq, size: treeSize),
            logger: logger)
    }

    /// RFC 9162 PROOF(from, D[to]) from stored subtree hashes.
    public func consistencyProof(tenantId: UUID, from: Int64, to: Int64, logger: Logger) async throws -> [[UInt8]] {
        guard from >= 1 else { throw AuditProofError.invalidRange("from must be at least 1") }
        guard from <= to else { throw AuditProofError.invalidRange("from must not exceed to") }
        return try await proof(
            tenantId: tenantId, size: to, ranges: MerkleTree.consistencyProofRanges(from: from, to: to), logger: logger)
    }

    func proof(tenantId: UUID, size: Int64, ranges: [Range<Int64>], logger: Logger) async throws -> [[UInt8]] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let current = try await AuditRows.treeSize(tenantId: tenantId, on: connection, logger: logger)
            guard size <= current else { throw AuditProofError.beyondTree(current) }
            let nodes = try await AuditRows.nodes(
                MerkleTree.subtrees(for: ranges), tenantId: tenantId, on: connection, logger: logger)
            return try AuditRows.proof(ranges, nodes: nodes)
        }
    }

    public struct Count: Sendable, Equatable {
        public let key: String
        public let count: Int64
    }

    /// Events per action and per purpose named in their data (`purpose` or `purposes`), for reports.
    public func counts(
        tenantId: UUID, filter: AuditEventFilter, logger: Logger
    ) async throws -> (byAction: [Count], byPurpose: [Count]) {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let scope = """
                FROM audit_leaves l JOIN audit_events e ON e.id = l.event_id
                WHERE l.tenant_id = $1 AND l.seq > $2 AND l.seq < $3
                  AND ($4::timestamptz IS NULL OR e.at >= $4) AND ($5::timestamptz IS NULL OR e.at < $5)
                """
            var bindings = PostgresBindings()
            bindings.append(tenantId)
            bindings.append(filter.after ?? -1)
            bindings.append(filter.below ?? Int64.max)
            bindings.append(filter.from)
            bindings.append(filter.to)
            let byAction = try await connection.closeSafeQuery(
                PostgresQuery(
                    unsafeSQL: "SELECT e.action, count(*)::int8 \(scope) GROUP BY e.action ORDER BY e.action",
                    binds: bindings), logger: logger
            ).decode((String, Int64).self).array().map { Count(key: $0.0, count: $0.1) }
            let byPurpose = try await connection.closeSafeQuery(
                PostgresQuery(
                    unsafeSQL: """
                        SELECT p.purpose, count(*)::int8 \(scope.replacingOccurrences(of: "WHERE", with: """
                            CROSS JOIN LATERAL (
                                SELECT e.data->>'purpose' AS purpose WHERE e.data ? 'purpose'
                                UNION ALL
                                SELECT jsonb_array_elements_text(e.data->'purposes')
                                WHERE jsonb_typeof(e.data->'purposes') = 'array') p
                            WHERE
                            """))
                        GROUP BY p.purpose ORDER BY p.purpose
                        """, binds: bindings), logger: logger
            ).decode((String, Int64).self).array().map { Count(key: $0.0, count: $0.1) }
            return (byAction, byPurpose)
        }
    }
}

extension AuditLogReader {
    /// The tenant's name, which its log's origin carries.
    public func tenantName(tenantId: UUID, logger: Logger) async throws -> String {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await connection.closeSafeQuery("SELECT name FROM tenants WHERE id = \(tenantId)", logger: logger)
                .decode(String.self).array().first ?? tenantId.lowercased
        }
    }
}

extension AuditLogReader {
    /// Seconds since the oldest event still waiting for the sequencer was committed, across tenants; 0 when none.
    public func sequencerLag(logger: Logger) async throws -> Double {
        try await client.withOperatorTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery(
                """
                SELECT coalesce(extract(epoch FROM clock_timestamp() - min(e.at)), 0)::float8
                FROM audit_unsequenced q JOIN audit_events e ON e.id = q.event_id
                """, logger: logger
            ).decode(Double.self).array().first ?? 0
        }
    }
}
