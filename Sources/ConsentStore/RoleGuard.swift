import Foundation
import Logging
import PostgresNIO

/// What the connecting role could do beyond what the server needs. `consentd serve` refuses such a role, because
/// row-level security and the audit log's protections only bind a role that is neither superuser nor owner.
public struct RolePrivileges: Sendable, Equatable {
    public let name: String
    public let isSuperuser: Bool
    public let bypassesRowSecurity: Bool
    public let ownsTables: Bool

    public var problems: [String] {
        var problems: [String] = []
        if isSuperuser { problems.append("is a superuser") }
        if bypassesRowSecurity { problems.append("has BYPASSRLS") }
        if ownsTables { problems.append("owns (or inherits the owner of) the service's tables") }
        return problems
    }

    public static func of(client: PostgresClient, logger: Logger) async throws -> RolePrivileges {
        let rows = try await client.query(
            """
            SELECT r.rolname, r.rolsuper, r.rolbypassrls,
                   EXISTS (SELECT 1 FROM pg_tables t
                           WHERE t.schemaname = 'public' AND pg_has_role(current_user, t.tableowner, 'USAGE'))
            FROM pg_roles r WHERE r.rolname = current_user
            """, logger: logger)
        for try await (name, isSuperuser, bypass, owns) in rows.decode((String, Bool, Bool, Bool).self) {
            return RolePrivileges(name: name, isSuperuser: isSuperuser, bypassesRowSecurity: bypass, ownsTables: owns)
        }
        throw RoleNotFound()
    }

    struct RoleNotFound: Error {}
}
