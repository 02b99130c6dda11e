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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let actions = events.map(\.action)
        let actors = events.map(\.actor)
        let refs = events.map { $0.subjectRef?.lowercased ?? "" }
        let data = try events.map { String(decoding: try encoder.encode($0.data), as: UTF8.self) }
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
}
