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
        var binds = PostgresBindings()
        let insert = try insertion(events, tenantId: tenantId, binds: &binds)
        try await connection.closeSafeQuery(PostgresQuery(unsafeSQL: insert, binds: binds), logger: logger)
    }

    /// The INSERT that appends `events`, its values appended to `binds` and numbered after those already there, so a
    /// write can append its events inside a larger statement (a data-modifying CTE) in the same round trip.
    /// unnest keeps the events' order, so ids (insertion order) follow the order given.
    static func insertion(_ events: [AuditEvent], tenantId: UUID, binds: inout PostgresBindings) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let first = binds.count + 1
        binds.append(tenantId)
        binds.append(events.map(\.action.rawValue))
        binds.append(events.map(\.actor))
        binds.append(events.map { $0.subjectRef?.lowercased ?? "" })
        binds.append(try events.map { String(decoding: try encoder.encode($0.data), as: UTF8.self) })
        return """
            INSERT INTO audit_events (tenant_id, action, actor, subject_ref, data)
            SELECT $\(first), e.action, e.actor, nullif(e.ref, '')::uuid, e.data::jsonb
            FROM unnest($\(first + 1)::text[], $\(first + 2)::text[], $\(first + 3)::text[], $\(first + 4)::text[])
                 WITH ORDINALITY AS e(action, actor, ref, data, n)
            ORDER BY e.n
            """
    }
}
