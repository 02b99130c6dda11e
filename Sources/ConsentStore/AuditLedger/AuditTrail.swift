import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// The one way events enter the audit log: inserted by the transaction that made the change, so an event exists
/// exactly when its change committed.
public enum AuditTrail {
    public static func append(
        _ events: [AuditEvent], tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws {
        guard !events.isEmpty else { return }
        let (actions, actors, refs, data) = try columns(events)
        // unnest keeps the events' order, so ids (insertion order) follow the order given.
        try await connection.query(
            """
            INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
            SELECT \(tenantId), e.action, e.actor, nullif(e.ref, '')::uuid, e.data::jsonb
            FROM unnest(\(actions)::text[], \(actors)::text[], \(refs)::text[], \(data)::text[])
                 WITH ORDINALITY AS e(action, actor, ref, data, n)
            ORDER BY e.n
            """, logger: logger)
    }

    /// The events as the four text arrays that `INSERT INTO audit_events ... FROM unnest(...)` takes, for writes that
    /// append their events inside a larger statement.
    static func columns(_ events: [AuditEvent]) throws -> (actions: [String], actors: [String], refs: [String], data: [String]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (
            events.map(\.action), events.map(\.actor), events.map { $0.subjectRef?.lowercased ?? "" },
            try events.map { String(decoding: try encoder.encode($0.data), as: UTF8.self) }
        )
    }
}
