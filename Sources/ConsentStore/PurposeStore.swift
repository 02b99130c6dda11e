import ConsentCore
import Foundation
import Logging
import PostgresNIO

public enum PurposeStoreError: Error, Equatable {
    /// Built-in purposes are the platform's and cannot be redefined.
    case builtIn(String)
    /// A consent, notice or template names the purpose: what people agreed to stays what it was.
    case categoryInUse(String)
}

/// The purpose catalogue a tenant sees: the built-ins and its own.
public struct PurposeStore: Sendable {
    let database: ConsentDatabase
    var client: PostgresClient { database.client }
    init(database: ConsentDatabase) { self.database = database }

    public func list(tenantId: UUID, logger: Logger) async throws -> [Purpose] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.list(on: connection, logger: logger)
        }
    }

    static func list(on connection: PostgresConnection, logger: Logger) async throws -> [Purpose] {
        let rows = try await connection.closeSafeQuery(
            """
            SELECT key, name, category, tenant_id IS NULL FROM purposes
            ORDER BY position, created_at, key
            """, logger: logger)
        var purposes: [Purpose] = []
        for try await (key, name, category, builtIn) in rows.decode((String, String, String, Bool).self) {
            guard let category = PurposeCategory(rawValue: category) else { continue }
            purposes.append(Purpose(key: key, name: name, category: category, builtIn: builtIn))
        }
        return purposes
    }

    /// The keys among `keys` that the tenant's catalogue lacks.
    static func unknown(_ keys: [String], on connection: PostgresConnection, logger: Logger) async throws -> [String] {
        let rows = try await connection.closeSafeQuery(
            "SELECT k FROM unnest(\(keys)::text[]) AS k WHERE NOT EXISTS (SELECT 1 FROM purposes p WHERE p.key = k)",
            logger: logger)
        return try await rows.decode(String.self).array()
    }

    /// Defines or renames a tenant purpose; true when it was created, and the catalogue change's position (a
    /// consistency token for checks on other instances). Audited either way.
    public func define(
        tenantId: UUID, key: String, name: String, category: PurposeCategory, actor: String, logger: Logger
    ) async throws -> (purpose: Purpose, created: Bool, token: ConsistencyToken) {
        guard !Purpose.builtIns.contains(where: { $0.key == key }) else { throw PurposeStoreError.builtIn(key) }
        // A category may change until something names the purpose (then the database refuses, CL020,
        // sql/migrations/0012); the catalogue change makes every instance read the tenant's categories again.
        let work = UnitOfWork<DefinedPurpose>(
            tenantId: tenantId, changes: { _ in [] }, catalogueChange: { $0.position },
            body: { connection, logger in
                let rows = try await connection.closeSafeQuery(
                    """
                    INSERT INTO purposes (tenant_id, key, name, category) VALUES (\(tenantId), \(key), \(name), \(category.rawValue))
                    ON CONFLICT (tenant_id, key) DO UPDATE SET name = excluded.name, category = excluded.category,
                        updated_at = now()
                    RETURNING (xmax = 0)
                    """, logger: logger)
                var created = false
                for try await inserted in rows.decode(Bool.self) { created = inserted }
                try await AuditTrail.append(
                    [
                        AuditEvent(
                            action: created ? .purposeCreated : .purposeUpdated, actor: actor,
                            data: ["key": .string(key), "name": .string(name), "category": .string(category.rawValue)])
                    ],
                    tenantId: tenantId, on: connection, logger: logger)
                let position = try await ConsentLedger.catalogueChange(
                    tenantId: tenantId, on: connection, logger: logger)
                return DefinedPurpose(
                    purpose: Purpose(key: key, name: name, category: category, builtIn: false), created: created,
                    position: position)
            })
        let defined: DefinedPurpose
        do {
            defined = try await database.commit(work, logger: logger)
        } catch  where DatabaseErrors.sqlState(error) == "CL020" {
            throw PurposeStoreError.categoryInUse(key)
        }
        return (defined.purpose, defined.created, ConsistencyToken(position: defined.position))
    }
}

struct DefinedPurpose: Sendable {
    let purpose: Purpose
    let created: Bool
    let position: Int64
}
