import ConsentCore
import Logging
import PostgresNIO

/// Why `consentd serve` must not start against this database, in words an operator can act on.
public enum StartupChecks {
    public static func refusals(
        privileges: RolePrivileges, schema: SchemaState, allowPrivilegedRole: Bool
    ) -> [String] {
        var refusals: [String] = []
        if !allowPrivilegedRole, !privileges.problems.isEmpty {
            refusals.append(
                "DATABASE_URL connects as role '\(privileges.name)', which \(privileges.problems.joined(separator: " and ")); "
                    + "row-level security and the audit log's protections do not bind such a role. Connect as the runtime "
                    + "role that `consentd migrate` creates (consentd_app by default), or set "
                    + "CONSENTD_ALLOW_PRIVILEGED_ROLE=true to accept the risk.")
        }
        if schema != .current {
            refusals.append("the database is not ready for this build: \(schema.explanation)")
        }
        return refusals
    }

    /// Reads the role and schema state and returns the refusals; throws only when the database cannot be asked,
    /// with the server's reason when it gave one.
    public static func check(
        _ url: DatabaseURL, schema: MigrationRunner, allowPrivilegedRole: Bool, logger: Logger
    ) async throws -> [String] {
        try await withDeadline(.seconds(10), grace: .seconds(1)) {
            // One connection of its own first: a pool retries a refused connection until the deadline, which then
            // said only "no answer within 10 s" for a server that had answered at once that pg_hba.conf or the
            // password or the role refused it.
            do {
                try await DedicatedConnector(url: url).withConnection(role: "startup", logger: logger) { connection in
                    try await connection.closeSafeQuery("SELECT 1", logger: logger)
                }
            } catch {
                guard let message = DatabaseErrors.serverMessage(error) else { throw error }
                throw ConnectionRefused(message: message, sqlState: DatabaseErrors.sqlState(error))
            }
            return try await withRunningClient(url, maximumConnections: 1, logger: logger) { client in
                let privileges = try await RolePrivileges.of(client: client, logger: logger)
                let state = try await schema.state(client: client, logger: logger)
                return refusals(privileges: privileges, schema: state, allowPrivilegedRole: allowPrivilegedRole)
            }
        }
    }
}

/// The server refused the connection itself (pg_hba.conf, the password, an unknown role or database).
public struct ConnectionRefused: Error, CustomStringConvertible {
    public let message: String
    public let sqlState: String?

    public var description: String {
        "the server refused the connection: \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "")
    }
}
