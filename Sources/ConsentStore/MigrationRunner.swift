import ConsentCore
import ConsentSchema
import Foundation
import Logging
import PostgresNIO

/// Applies `sql/migrations` in order, each in its own transaction and recorded with its checksum, and re-applies
/// the runtime role's grants. A session-level advisory lock makes concurrent runs (several instances starting at
/// once) apply each migration exactly once: the second waits, then finds nothing pending.
public struct MigrationRunner: Sendable {
    public let files: [MigrationFile]
    /// `sql/roles/runtime_grants.sql`, with `{{app_role}}` standing for the quoted role name.
    public let grantsTemplate: String

    /// Arbitrary but fixed: the key every `consentd migrate` locks on.
    static let advisoryLockKey: Int64 = 0x636F_6E73_656E_7464  // "consentd"

    public init(files: [MigrationFile], grantsTemplate: String) {
        self.files = files
        self.grantsTemplate = grantsTemplate
    }

    /// The migrations and grants shipped with this build.
    public static func bundled() throws -> MigrationRunner {
        MigrationRunner(files: try ConsentSchema.migrations(), grantsTemplate: try ConsentSchema.runtimeGrants())
    }

    /// - Returns: the migrations this run applied (empty when the schema was already current).
    @discardableResult
    public func migrate(
        client: PostgresClient, appRole: String, limits: RuntimeSessionLimits = .default, logger: Logger
    ) async throws -> [MigrationFile] {
        try await client.withConnection { connection in
            // Read to the end, so that an error while waiting for the lock is raised here (AuditSequencer).
            _ = try await connection.closeSafeQuery("SELECT pg_advisory_lock(\(Self.advisoryLockKey))", logger: logger)
                .collect()
            do {
                let applied = try await applyPending(connection: connection, logger: logger)
                try await ensureRuntimeRole(appRole, connection: connection, logger: logger)
                try await limitSessions(of: appRole, limits, connection: connection, logger: logger)
                try await connection.closeSafeQuery(
                    "SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
                return applied
            } catch {
                _ = try? await connection.closeSafeQuery(
                    "SELECT pg_advisory_unlock(\(Self.advisoryLockKey))", logger: logger)
                throw error
            }
        }
    }

    func applyPending(connection: PostgresConnection, logger: Logger) async throws -> [MigrationFile] {
        // The ledger of applied migrations is the one table the runner itself must create before it can read it.
        try await connection.closeSafeQuery(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     integer PRIMARY KEY,
                name        text NOT NULL,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
        let applied = try await Self.appliedMigrations(connection: connection, logger: logger)
        let pending = try MigrationPlan.pending(files: files, applied: applied)
        for migration in pending {
            logger.info(
                "applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            do {
                _ = try await connection.withCloseSafeTransaction(logger: logger) { connection in
                    for statement in SQLScript.statements(migration.sql) {
                        try await connection.closeSafeQuery(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.closeSafeQuery(
                        """
                        INSERT INTO schema_migrations (version, name, checksum)
                        VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                        """, logger: logger)
                }
            } catch {
                throw MigrationFailed(
                    version: migration.version, name: migration.name, sqlState: DatabaseErrors.sqlState(error),
                    message: DatabaseErrors.serverMessage(error) ?? "\(error)")
            }
        }
        return pending
    }

    /// Creates the runtime login role when missing, then grants it exactly what `sql/roles/runtime_grants.sql` says.
    func ensureRuntimeRole(_ role: String, connection: PostgresConnection, logger: Logger) async throws {
        let quoted = "\"\(role)\""  // validated as a plain lower-case identifier by EnvironmentReader.roleName
        let exists =
            try await connection.closeSafeQuery("SELECT 1 FROM pg_roles WHERE rolname = \(role)", logger: logger)
            .collect().isEmpty == false
        if !exists {
            logger.info("creating the runtime role", metadata: ["role": "\(role)"])
            try await connection.closeSafeQuery(
                PostgresQuery(
                    unsafeSQL: "CREATE ROLE \(quoted) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"),
                logger: logger)
        }
        let grants = grantsTemplate.replacingOccurrences(of: "{{app_role}}", with: quoted)
        _ = try await connection.withCloseSafeTransaction(logger: logger) { connection in
            for statement in SQLScript.statements(grants) {
                try await connection.closeSafeQuery(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    /// Sets the role's session limits, replacing earlier values (`RuntimeSessionLimits`). On the role itself, not
    /// per database: a database made from a template (each test's) does not inherit per-database role settings, and
    /// the runtime role serves one service whatever database it connects to.
    func limitSessions(
        of role: String, _ limits: RuntimeSessionLimits, connection: PostgresConnection, logger: Logger
    ) async throws {
        let quoted = "\"\(role)\""  // validated as a plain lower-case identifier by EnvironmentReader.roleName
        for (name, value) in limits.settings {
            // The role's settings are one row of a shared catalog: migrations of other databases on the same server
            // (each test's) may update it at the same moment, and PostgreSQL then refuses one with "tuple
            // concurrently updated" (XX000). The setting is the same either way; trying again is enough.
            for attempt in 1...5 {
                do {
                    try await connection.closeSafeQuery(
                        PostgresQuery(unsafeSQL: "ALTER ROLE \(quoted) SET \(name) = '\(value)'"), logger: logger)
                    break
                } catch  where attempt < 5 && DatabaseErrors.sqlState(error) == "XX000" {
                    try await Task.sleep(for: .milliseconds(20 * attempt))
                }
            }
        }
    }

    static func appliedMigrations(connection: PostgresConnection, logger: Logger) async throws -> [AppliedMigration] {
        var applied: [AppliedMigration] = []
        let rows = try await connection.closeSafeQuery(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version", logger: logger)
        for try await (version, name, checksum) in rows.decode((Int, String, String).self) {
            applied.append(AppliedMigration(version: version, name: name, checksum: checksum))
        }
        return applied
    }

    /// Whether the database's schema is exactly what this build expects. Read-only: the runtime role may call it.
    public func state(client: PostgresClient, logger: Logger) async throws -> SchemaState {
        let applied: [AppliedMigration]
        do {
            applied = try await client.withConnection { connection in
                try await Self.appliedMigrations(connection: connection, logger: logger)
            }
        } catch  where DatabaseErrors.sqlState(error) == "42P01" {  // undefined_table: never migrated
            return .pending(files)
        }
        do {
            let pending = try MigrationPlan.pending(files: files, applied: applied)
            return pending.isEmpty ? .current : .pending(pending)
        } catch {
            return .problem(error)
        }
    }
}

/// A migration that the database rejected; its transaction was rolled back, so nothing of it remains.
public struct MigrationFailed: Error, Equatable, CustomStringConvertible {
    public let version: Int
    public let name: String
    public let sqlState: String?
    public let message: String

    public var description: String {
        "migration \(version) (\(name)) failed and was rolled back: \(message) [SQLSTATE \(sqlState ?? "none")]"
    }
}

public enum SchemaState: Sendable, Equatable {
    case current
    case pending([MigrationFile])
    case problem(MigrationProblem)

    public var explanation: String {
        switch self {
        case .current: "the schema is current"
        case .pending(let files):
            "\(files.count) migration(s) pending (\(files.map { "\($0.version)_\($0.name)" }.joined(separator: ", "))); run `consentd migrate` as the owner"
        case .problem(let problem): problem.description
        }
    }
}
