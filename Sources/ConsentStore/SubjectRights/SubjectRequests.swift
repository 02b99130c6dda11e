import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A data-subject request as the DPO tracks it.
public struct SubjectRequestRecord: Sendable, Equatable {
    public let id: UUID
    public let type: SubjectRequestType
    public let status: SubjectRequestStatus
    public let subjectRef: UUID
    public let receivedAt: Date
    public let dueAt: Date
    public let closedAt: Date?
    /// The API key that completed or cancelled it.
    public let closedBy: UUID?

    public func isOverdue(at now: Date) -> Bool {
        ResponseDueDate.isOverdue(status: status, dueAt: dueAt, now: now)
    }
}

/// Requests are rows in the caller's tenant transaction; every transition appends its audit event there too.
public enum SubjectRequests {
    static let columns = "id, type, status, subject_id, received_at, due_at, closed_at, closed_by"

    /// Records a request received at `receivedAt` (now, or earlier when it came by letter or e-mail); due one
    /// calendar month later.
    /// The subject must be one the tenant holds: a request about nobody has nothing to complete (404).
    public static func create(
        type: SubjectRequestType, blindIndex: [UInt8], channel: MessageChannel, receivedAt: Date, tenantId: UUID,
        caller: CallerIdentity, on connection: PostgresConnection, logger: Logger
    ) async throws -> SubjectRequestRecord {
        guard
            let subjectId = try await SubjectDirectory.find(
                blindIndex: blindIndex, channel: channel, on: connection, logger: logger)
        else { throw SubjectRightsError.subjectNotFound }
        let id = UUID()
        let dueAt = ResponseDueDate.dueAt(receivedAt: receivedAt)
        let rows = try await connection.closeSafeQuery(
            """
            INSERT INTO subject_requests (id, tenant_id, subject_id, type, status, received_at, due_at, recorded_by)
            VALUES (\(id), \(tenantId), \(subjectId), \(type.rawValue), 'pending', \(receivedAt), \(dueAt), \(caller.keyId))
            RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let record = try await decode(rows).first else { throw SubjectRightsError.requestNotFound }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: .requestReceived, actor: caller.actor, subjectRef: subjectId,
                    data: [
                        "requestId": .id(id), "type": .string(type.rawValue),
                        "receivedAt": .string(RFC3339.format(receivedAt)),
                        "dueAt": .string(RFC3339.format(dueAt)),
                    ])
            ], tenantId: tenantId, on: connection, logger: logger)
        return record
    }

    public static func get(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws
        -> SubjectRequestRecord?
    {
        try await decode(
            connection.closeSafeQuery(
                "SELECT \(unescaped: columns) FROM subject_requests WHERE id = \(id)", logger: logger)
        ).first
    }

    /// The tenant's requests, the most urgent first: by due date, then receipt.
    public static func list(
        subjectId: UUID? = nil, status: SubjectRequestStatus?, limit: Int = 1000, on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [SubjectRequestRecord] {
        try await decode(
            connection.closeSafeQuery(
                """
                SELECT \(unescaped: columns) FROM subject_requests
                WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                  AND (\(subjectId)::uuid IS NULL OR subject_id = \(subjectId))
                ORDER BY due_at, received_at, id
                LIMIT \(limit)
                """, logger: logger))
    }

    /// Locks a pending request for its transition; refuses one that is missing or already closed.
    public static func lockPending(_ id: UUID, on connection: PostgresConnection, logger: Logger) async throws
        -> SubjectRequestRecord
    {
        guard
            let record = try await decode(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: columns) FROM subject_requests WHERE id = \(id) FOR UPDATE", logger: logger)
            ).first
        else { throw SubjectRightsError.requestNotFound }
        guard record.status == .pending else { throw SubjectRightsError.requestNotPending(record.status) }
        return record
    }

    /// Closes a request locked by `lockPending`: completed (with what was done) or cancelled.
    public static func close(
        _ record: SubjectRequestRecord, as status: SubjectRequestStatus, outcome: String, tenantId: UUID,
        caller: CallerIdentity, on connection: PostgresConnection, logger: Logger
    ) async throws -> SubjectRequestRecord {
        let rows = try await connection.closeSafeQuery(
            """
            UPDATE subject_requests SET status = \(status.rawValue), closed_at = date_trunc('milliseconds', now()),
                   closed_by = \(caller.keyId)
            WHERE id = \(record.id) AND status = 'pending'
            RETURNING \(unescaped: columns)
            """, logger: logger)
        guard let closed = try await decode(rows).first else {
            throw SubjectRightsError.requestNotPending(record.status)
        }
        try await AuditTrail.append(
            [
                AuditEvent(
                    action: status == .cancelled ? .requestCancelled : .requestCompleted, actor: caller.actor,
                    subjectRef: record.subjectRef,
                    data: [
                        "requestId": .id(record.id), "type": .string(record.type.rawValue), "outcome": .string(outcome),
                        "dueAt": .string(RFC3339.format(record.dueAt)),
                    ])
            ], tenantId: tenantId, on: connection, logger: logger)
        return closed
    }

    static func decode(_ rows: StoreRows) async throws -> [SubjectRequestRecord] {
        var records: [SubjectRequestRecord] = []
        for try await (id, type, status, subjectId, receivedAt, dueAt, closedAt, closedBy) in rows.decode(
            (UUID, String, String, UUID, Date, Date, Date?, UUID?).self)
        {
            guard let type = SubjectRequestType(rawValue: type), let status = SubjectRequestStatus(rawValue: status)
            else {
                continue
            }
            records.append(
                SubjectRequestRecord(
                    id: id, type: type, status: status, subjectRef: subjectId, receivedAt: receivedAt, dueAt: dueAt,
                    closedAt: closedAt, closedBy: closedBy))
        }
        return records
    }
}

extension ConsentDatabase {
    /// The tenant's requests, the most urgent first.
    public func subjectRequests(
        _ tenantId: UUID, status: SubjectRequestStatus?, limit: Int = 1000, logger: Logger
    ) async throws -> [SubjectRequestRecord] {
        try await read(tenantId, logger: logger) { connection in
            try await SubjectRequests.list(status: status, limit: limit, on: connection, logger: logger)
        }
    }

    public func subjectRequest(_ id: UUID, tenantId: UUID, logger: Logger) async throws -> SubjectRequestRecord? {
        try await read(tenantId, logger: logger) { connection in
            try await SubjectRequests.get(id, on: connection, logger: logger)
        }
    }
}
