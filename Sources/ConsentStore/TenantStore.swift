import ConsentCore
import Foundation
import Logging
import PostgresNIO

public struct Tenant: Sendable, Equatable {
    public let id: UUID
    public let name: String
    public let createdAt: Date
}

public enum TenantStoreError: Error, Equatable, CustomStringConvertible {
    case nameTaken(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .nameTaken(let name): "a tenant named '\(name)' already exists"
        case .notFound(let name): "no tenant is named '\(name)'"
        }
    }
}

/// The tenant registry. Creating and listing tenants is operator work: it runs in operator scope.
public struct TenantStore: Sendable {
    let client: PostgresClient
    public init(client: PostgresClient) { self.client = client }

    public func create(_ name: TenantName, logger: Logger) async throws -> Tenant {
        do {
            return try await client.withOperatorTransaction(logger: logger) { connection in
                let rows = try await connection.closeSafeQuery(
                    "INSERT INTO tenants (name) VALUES (\(name.value)) RETURNING id, name, created_at", logger: logger)
                guard let tenant = try await Self.first(rows) else { throw TenantStoreError.notFound(name.value) }
                // The first event of the tenant's audit log.
                try await AuditTrail.append(
                    [
                        AuditEvent(
                            action: .tenantCreated, actor: AuditEvent.operatorActor, data: ["name": .string(name.value)]
                        )
                    ],
                    tenantId: tenant.id, on: connection, logger: logger)
                return tenant
            }
        } catch  where DatabaseErrors.sqlState(error) == DatabaseErrors.uniqueViolation {
            throw TenantStoreError.nameTaken(name.value)
        }
    }

    public func named(_ name: String, logger: Logger) async throws -> Tenant {
        let tenant = try await client.withOperatorTransaction(logger: logger) { connection in
            try await Self.first(
                connection.closeSafeQuery(
                    "SELECT id, name, created_at FROM tenants WHERE name = \(name)", logger: logger))
        }
        guard let tenant else { throw TenantStoreError.notFound(name) }
        return tenant
    }

    public func list(logger: Logger) async throws -> [Tenant] {
        try await client.withOperatorTransaction(logger: logger) { connection in
            var tenants: [Tenant] = []
            let rows = try await connection.closeSafeQuery(
                "SELECT id, name, created_at FROM tenants ORDER BY name", logger: logger)
            for try await (id, name, createdAt) in rows.decode((UUID, String, Date).self) {
                tenants.append(Tenant(id: id, name: name, createdAt: createdAt))
            }
            return tenants
        }
    }

    /// Every tenant's id, in a stable order: what the per-tenant batch jobs walk.
    static func ids(client: PostgresClient, logger: Logger) async throws -> [UUID] {
        try await client.withOperatorTransaction(logger: logger) { connection in
            try await connection.closeSafeQuery("SELECT id FROM tenants ORDER BY id", logger: logger).decode(UUID.self)
                .array()
        }
    }

    static func first(_ rows: StoreRows) async throws -> Tenant? {
        for try await (id, name, createdAt) in rows.decode((UUID, String, Date).self) {
            return Tenant(id: id, name: name, createdAt: createdAt)
        }
        return nil
    }
}
