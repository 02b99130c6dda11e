import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A change the platform made to one of the tenant's templates, from the audit log, for the console.
public struct TemplatePlatformEvent: Sendable, Equatable {
    public let at: Date
    public let action: AuditAction
    public let name: String
    public let language: String
    public let version: Int
    public let from: String
    public let to: String
}

extension TemplateStore {
    /// The platform's latest template changes (status, category, quality), newest first, as the audit log has them.
    public func platformHistory(tenantId: UUID, limit: Int = 50, logger: Logger) async throws
        -> [TemplatePlatformEvent]
    {
        let actions = [AuditAction.templateStatusChanged, .templateCategoryChanged, .templateQualityChanged]
        return try await database.read(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT at, action, data->>'name', data->>'language', (data->>'version')::int, data->>'from', data->>'to'
                FROM audit_events WHERE action = ANY(\(actions.map(\.rawValue))) AND data->>'source' = 'platform'
                ORDER BY id DESC LIMIT \(limit)
                """, logger: logger)
            var events: [TemplatePlatformEvent] = []
            for try await (at, action, name, language, version, from, to) in rows.decode(
                (Date, String, String, String, Int, String, String).self)
            {
                guard let action = AuditAction(rawValue: action) else { continue }
                events.append(
                    TemplatePlatformEvent(
                        at: at, action: action, name: name, language: language, version: version, from: from, to: to))
            }
            return events
        }
    }
}
