import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// The outcome of verifying one tenant's log from what is stored.
public struct AuditVerification: Sendable, Equatable {
    public var treeSize: Int64 = 0
    public var eventsChecked: Int64 = 0
    public var checkpointsChecked: Int64 = 0
    public var latestCheckpointSize: Int64?
    /// Events committed but not yet sequenced (normal for a second or two after a write).
    public var unsequencedEvents: Int64 = 0
    public var firstBadSeq: Int64?
    public var problem: String?
    /// The keys that signed the checkpoints checked, in the order they first signed one.
    public var signingKeys: [[UInt8]] = []

    public var ok: Bool { problem == nil }
}

/// Recomputes a tenant's log from the stored events and checks it against everything stored about it: each leaf
/// hash, each perfect-subtree hash, each checkpoint's root, origin and Ed25519 signature, consistency between
/// consecutive checkpoints, and that no event is missing from the log or from the table. Reads a page at a time.
public struct AuditVerifier: Sendable {
    let client: PostgresClient
    /// The keys a checkpoint may be signed with: the current one and those it replaced. Each checkpoint is checked
    /// against the key recorded with it, which must be one of these (after a rotation the older checkpoints carry
    /// the older key: issue 21, finding 8). Empty trusts the recorded keys, which proves integrity against an edit
    /// but not against someone able to sign with a key of their own.
    let trustedKeys: [[UInt8]]
    let pageSize: Int

    public init(client: PostgresClient, trustedKeys: [[UInt8]] = [], pageSize: Int = 2000) {
        self.client = client
        self.trustedKeys = trustedKeys
        self.pageSize = pageSize
    }

    struct Failure: Error {
        let seq: Int64?
        let problem: String
    }

    public func verify(tenantId: UUID, tenantName: String, logger: Logger) async throws -> AuditVerification {
        var result = AuditVerification()
        do {
            try await run(tenantId: tenantId, tenantName: tenantName, into: &result, logger: logger)
        } catch let failure as Failure {
            result.firstBadSeq = failure.seq
            result.problem = failure.problem
        }
        return result
    }

    func run(tenantId: UUID, tenantName: String, into result: inout AuditVerification, logger: Logger) async throws {
        var frontier = MerkleFrontier.empty
        var checkpoints = CheckpointCursor(tenantId: tenantId, client: client, logger: logger)
        var previous: StoredCheckpoint?
        let reader = AuditLogReader(client: client)

        // Checkpoints of the empty tree come before any leaf.
        while let checkpoint = try await checkpoints.peek(), checkpoint.size == 0 {
            try check(checkpoint, against: frontier, tenantName: tenantName, into: &result)
            result.checkpointsChecked += 1
            previous = checkpoint
            _ = try await checkpoints.next()
        }

        var next: Int64 = 0
        while true {
            let rows = try await leafRows(tenantId: tenantId, from: next, logger: logger)
            if rows.isEmpty { break }
            // The perfect subtrees above the leaves that this page completes, in the order it completes them.
            var completed: [(Subtree, [UInt8])] = []
            for row in rows {
                guard row.seq == next else { throw Failure(seq: next, problem: "seq \(next) is missing from the log") }
                guard let record = row.record else {
                    throw Failure(
                        seq: next, problem: "the event sequenced at seq \(next) is missing from the events table")
                }
                guard let stored = row.storedLeafHash else {
                    throw Failure(seq: next, problem: "the leaf hash of seq \(next) is missing")
                }
                let leaf = try record.leafHash()
                guard leaf == stored else {
                    throw Failure(seq: next, problem: "the event at seq \(next) was changed after it was sequenced")
                }
                completed += frontier.append(leaf).dropFirst()
                next += 1
            }
            let stored = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
                try await AuditRows.nodes(completed.map(\.0), tenantId: tenantId, on: connection, logger: logger)
            }
            for (subtree, hash) in completed where stored[subtree] != hash {
                let range = subtree.leaves
                throw Failure(
                    seq: range.lowerBound,
                    problem: "the stored hash of the subtree over seq \(range.lowerBound)..<\(range.upperBound) "
                        + (stored[subtree] == nil ? "is missing" : "does not match its leaves"))
            }
            result.eventsChecked = next
            result.treeSize = next
            // Checkpoints whose size this page reached.
            while let checkpoint = try await checkpoints.peek(), checkpoint.size <= next {
                let state = try await storedFrontier(
                    atSize: checkpoint.size, tenantId: tenantId, current: frontier, logger: logger)
                try check(checkpoint, against: state, tenantName: tenantName, into: &result)
                if let previous, previous.size > 0 {
                    let proof = try await reader.consistencyProof(
                        tenantId: tenantId, from: previous.size, to: checkpoint.size, logger: logger)
                    guard
                        MerkleTree.verifyConsistency(
                            firstSize: previous.size, secondSize: checkpoint.size, firstRoot: previous.rootHash,
                            secondRoot: checkpoint.rootHash, proof: proof)
                    else {
                        throw Failure(
                            seq: previous.size,
                            problem:
                                "the checkpoints of sizes \(previous.size) and \(checkpoint.size) are not consistent")
                    }
                }
                result.checkpointsChecked += 1
                result.latestCheckpointSize = checkpoint.size
                previous = checkpoint
                _ = try await checkpoints.next()
            }
            if rows.count < pageSize { break }
        }

        if let beyond = try await checkpoints.peek() {
            throw Failure(
                seq: next,
                problem:
                    "a checkpoint covers \(beyond.size) events but the log holds \(next): seq \(next) onwards is missing"
            )
        }
        let (queued, orphans) = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let queued =
                try await connection.closeSafeQuery(
                    "SELECT count(*)::int8 FROM audit_unsequenced WHERE tenant_id = \(tenantId)", logger: logger
                ).decode(Int64.self).array().first ?? 0
            let orphans =
                try await connection.closeSafeQuery(
                    """
                    SELECT count(*)::int8 FROM audit_events e
                    WHERE e.tenant_id = \(tenantId)
                      AND NOT EXISTS (SELECT 1 FROM audit_leaves l WHERE l.event_id = e.id)
                      AND NOT EXISTS (SELECT 1 FROM audit_unsequenced u WHERE u.event_id = e.id)
                    """, logger: logger
                ).decode(Int64.self).array().first ?? 0
            return (queued, orphans)
        }
        result.unsequencedEvents = queued
        if orphans > 0 {
            throw Failure(seq: nil, problem: "\(orphans) events are neither in the log nor waiting to be sequenced")
        }
    }

    /// The frontier at a checkpoint's size: the current one, or rebuilt from stored subtrees already verified.
    func storedFrontier(
        atSize size: Int64, tenantId: UUID, current: MerkleFrontier, logger: Logger
    ) async throws -> MerkleFrontier {
        if size == current.size { return current }
        let subtrees = MerkleFrontier.subtrees(forSize: size)
        let stored = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await AuditRows.nodes(subtrees, tenantId: tenantId, on: connection, logger: logger)
        }
        guard let frontier = MerkleFrontier(size: size, hashes: subtrees.compactMap { stored[$0] }) else {
            throw Failure(seq: size, problem: "the stored subtree hashes for a tree of \(size) events are missing")
        }
        return frontier
    }

    func check(
        _ checkpoint: StoredCheckpoint, against tree: MerkleFrontier, tenantName: String,
        into result: inout AuditVerification
    ) throws {
        let size = checkpoint.size
        guard checkpoint.origin.hasSuffix("/" + tenantName) else {
            throw Failure(seq: size, problem: "the checkpoint of size \(size) names another log (\(checkpoint.origin))")
        }
        let key = checkpoint.publicKey
        guard trustedKeys.isEmpty || trustedKeys.contains(key) else {
            throw Failure(
                seq: size,
                problem: "the checkpoint of size \(size) is signed by the key \(Data(key).base64EncodedString()), "
                    + "which is not among the keys given (the current signing key and the retired ones)")
        }
        if !result.signingKeys.contains(key) { result.signingKeys.append(key) }
        let body: String
        do {
            body = try NoteVerifier(name: checkpoint.origin, publicKey: key).open(checkpoint.note)
        } catch {
            throw Failure(seq: size, problem: "the checkpoint of size \(size) is not validly signed: \(error)")
        }
        let signed: Checkpoint
        do {
            signed = try Checkpoint(body: body)
        } catch {
            throw Failure(seq: size, problem: "the checkpoint of size \(size) is malformed: \(error)")
        }
        guard signed == Checkpoint(origin: checkpoint.origin, size: size, rootHash: checkpoint.rootHash) else {
            throw Failure(seq: size, problem: "the checkpoint of size \(size) differs from its signed note")
        }
        guard signed.rootHash == tree.root else {
            throw Failure(
                seq: size == 0 ? 0 : size - 1,
                problem: "the root signed at size \(size) does not match the events stored")
        }
    }

    struct LeafRow {
        let seq: Int64
        let record: AuditRecord?
        let storedLeafHash: [UInt8]?
    }

    func leafRows(tenantId: UUID, from: Int64, logger: Logger) async throws -> [LeafRow] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT l.seq, e.id IS NOT NULL, \(unescaped: AuditRows.atText), e.action, e.actor, e.subject_ref,
                       e.data::text, n.hash
                FROM audit_leaves l
                LEFT JOIN audit_events e ON e.id = l.event_id
                LEFT JOIN audit_nodes n ON n.tenant_id = l.tenant_id AND n.level = 0 AND n.idx = l.seq
                WHERE l.tenant_id = \(tenantId) AND l.seq >= \(from)
                ORDER BY l.seq
                LIMIT \(pageSize)
                """, logger: logger)
            var result: [LeafRow] = []
            for try await (seq, present, at, action, actor, subjectRef, data, hash) in rows.decode(
                (Int64, Bool, String?, String?, String?, UUID?, String?, ByteBuffer?).self)
            {
                var record: AuditRecord?
                if present, let at, let action, let actor, let data {
                    let members = try? AuditRows.data(data)
                    record = members.map {
                        AuditRecord(seq: seq, at: at, action: action, actor: actor, subjectRef: subjectRef, data: $0)
                    }
                }
                result.append(
                    LeafRow(seq: seq, record: record, storedLeafHash: hash.map { Array($0.readableBytesView) }))
            }
            return result
        }
    }
}

/// Checkpoints in size order, a page at a time.
struct CheckpointCursor {
    let tenantId: UUID
    let client: PostgresClient
    let logger: Logger
    var buffer: [StoredCheckpoint] = []
    var after: Int64 = -1
    var exhausted = false

    init(tenantId: UUID, client: PostgresClient, logger: Logger) {
        self.tenantId = tenantId
        self.client = client
        self.logger = logger
    }

    mutating func peek() async throws -> StoredCheckpoint? {
        if buffer.isEmpty && !exhausted { try await fill() }
        return buffer.first
    }

    mutating func next() async throws -> StoredCheckpoint? {
        guard try await peek() != nil else { return nil }
        return buffer.removeFirst()
    }

    mutating func fill() async throws {
        let (tenantId, after, logger) = (self.tenantId, self.after, self.logger)
        let page = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await StoredCheckpoint.decode(
                connection.closeSafeQuery(
                    """
                    SELECT \(unescaped: StoredCheckpoint.columns) FROM audit_checkpoints
                    WHERE tenant_id = \(tenantId) AND tree_size > \(after) ORDER BY tree_size LIMIT 1000
                    """, logger: logger))
        }
        buffer = page
        exhausted = page.count < 1000
        self.after = buffer.last?.size ?? after
    }
}
