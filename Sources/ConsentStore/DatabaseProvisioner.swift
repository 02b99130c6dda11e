import ConsentCore
import Logging
import PostgresNIO

/// Sets up, as a superuser, what an operator sets up by hand in production: a non-superuser owner role that may
/// create the runtime role, and a database it owns. Used by `consentd dev` and the test support.
public enum DatabaseProvisioner {
    public static let ownerRole = "consentd_owner"

    public static func ensureOwnerRole(superuser client: PostgresClient, logger: Logger) async throws {
        let exists =
            try await client.query(
                "SELECT 1 FROM pg_roles WHERE rolname = \(ownerRole)", logger: logger
            ).collect().isEmpty == false
        if !exists {
            do {
                try await client.query(
                    PostgresQuery(unsafeSQL: "CREATE ROLE \(ownerRole) LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS"),
                    logger: logger)
            } catch  where DatabaseErrors.sqlState(error) == DatabaseErrors.uniqueViolation {
                // Another process created it between our look and our create.
            }
        }
    }

    /// Creates `name` owned by the owner role, copying `template` when given. False when it already existed.
    @discardableResult
    public static func ensureDatabase(
        _ name: String, template: String? = nil, superuser client: PostgresClient, logger: Logger
    ) async throws -> Bool {
        let exists =
            try await client.query(
                "SELECT 1 FROM pg_database WHERE datname = \(name)", logger: logger
            ).collect().isEmpty == false
        if exists { return false }
        let templateClause = template.map { " TEMPLATE \"\($0)\"" } ?? ""
        try await client.query(
            PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\" OWNER \(ownerRole)\(templateClause)"), logger: logger)
        return true
    }
}
