import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

/// What the runtime role (the server's connection) must not be able to do, tried for real.
@Suite struct RuntimeRoleTests {
    func sqlState(of sql: String, on client: PostgresClient) async -> String? {
        do {
            try await client.withUnwrappedTransaction(logger: TestPostgres.logger) { connection in
                try await connection.query(
                    "SELECT set_config('consentd.operator', 'on', true)", logger: TestPostgres.logger)
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: TestPostgres.logger)
            }
            return nil
        } catch {
            return DatabaseErrors.sqlState(error) ?? "not a server error: \(error)"
        }
    }

    @Test func runtimeRoleLacksDangerousPrivileges() async throws {
        let database = try await TestDatabase.fresh()
        let (tenant, key) = try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName("acme")!, logger: database.logger)
            let key = try await APIKeyStore(client: client).create(
                tenantId: tenant.id, scopes: [.admin], label: "", logger: database.logger)
            return (tenant, key)
        }
        try await database.withClient(\.app) { client throws in
            let forbidden = [
                "CREATE TABLE sneaky (x int)",
                "DELETE FROM tenants",
                "DELETE FROM api_keys",
                "UPDATE tenants SET name = 'renamed'",
                "UPDATE api_keys SET scopes = ARRAY['admin','dpo']",
                "TRUNCATE api_keys",
                "DROP TABLE api_keys",
                "ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY",
                "ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY",
                "INSERT INTO tenants (name) VALUES ('other')",
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (999, 'x', 'y')",
                "CREATE ROLE intruder",
                // The consent lifecycle: evidence is append-only, state changes touch named columns only.
                "UPDATE audit_events SET action = 'consent.forged'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
                "UPDATE notices SET text = 'other words'",
                "DELETE FROM notices",
                "UPDATE collections SET method = 'checkbox'",
                "DELETE FROM collections",
                "DELETE FROM consents",
                "UPDATE consents SET purpose = 'marketing', notice_id = gen_random_uuid()",
                "UPDATE subjects SET channel = 'sms'",
                "UPDATE subjects SET tenant_id = gen_random_uuid()",
                "DELETE FROM subjects",
                "UPDATE subject_keys SET subject_id = gen_random_uuid()",
                "UPDATE tenant_keys SET purpose = 'blind_index', tenant_id = gen_random_uuid()",
                "DELETE FROM tenant_keys",
                "UPDATE interactions SET text_ciphertext = NULL",
                "UPDATE collections SET subject_id = gen_random_uuid()",
                "UPDATE purposes SET tenant_id = NULL",
                "UPDATE idempotency_keys SET request_hash = ''",
                // Data-subject rights: erasure, retention and rotation change named columns and delete keys,
                // interactions and replay records (granted); requests are otherwise append-only, and a suppression
                // entry can only be widened by an objection (its scope and time), never re-attributed or removed.
                "UPDATE subject_requests SET due_at = now(), type = 'access'",
                "DELETE FROM subject_requests",
                "UPDATE suppressions SET reason = 'withdrawn'",
                "UPDATE suppressions SET keyed_hash = sha256(keyed_hash)",
                "DELETE FROM suppressions",
                "TRUNCATE suppressions",
                // The audit ledger: the log tables take INSERT and SELECT only.
                "UPDATE audit_leaves SET seq = seq + 1",
                "DELETE FROM audit_leaves",
                "TRUNCATE audit_leaves",
                "UPDATE audit_nodes SET hash = sha256(hash)",
                "DELETE FROM audit_nodes",
                "TRUNCATE audit_nodes",
                "UPDATE audit_checkpoints SET note = ''",
                "DELETE FROM audit_checkpoints",
                "TRUNCATE audit_checkpoints",
                "UPDATE audit_unsequenced SET tenant_id = gen_random_uuid()",
                // Imports: a row's outcome, line and leaf are written once; only erasure clears its person.
                "UPDATE import_rows SET outcome = 'granted'",
                "UPDATE import_rows SET leaf_hash = NULL",
                "DELETE FROM import_rows",
                "UPDATE imports SET tenant_id = gen_random_uuid()",
                "UPDATE imports SET recorded_by = gen_random_uuid()",
            ]
            for sql in forbidden {
                #expect(await sqlState(of: sql, on: client) == DatabaseErrors.insufficientPrivilege, "\(sql)")
            }
            // What it may do: revoke a key of the tenant it names.
            #expect(
                try await APIKeyStore(client: client).revoke(
                    tenantId: tenant.id, keyId: key.record.id, logger: database.logger))
        }
    }

    @Test func rowLevelSecurityFailsClosedAndSeparatesTenants() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let (acme, globex) = try await database.withClient(\.owner) { client throws in
            let tenants = TenantStore(client: client)
            let keys = APIKeyStore(client: client)
            let acme = try await tenants.create(TenantName("acme")!, logger: logger)
            let globex = try await tenants.create(TenantName("globex")!, logger: logger)
            _ = try await keys.create(tenantId: acme.id, scopes: [.admin], label: "a", logger: logger)
            _ = try await keys.create(tenantId: globex.id, scopes: [.dpo], label: "g", logger: logger)
            return (acme, globex)
        }
        try await database.withClient(\.app) { client throws in
            // No tenant named: nothing visible, though rows exist.
            for table in ["tenants", "api_keys"] {
                let count = try await client.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"))
                    .collect().first!.decode(Int.self)
                #expect(count == 0, "\(table) visible without a tenant")
            }
            // A tenant sees its own keys only.
            let acmeKeys = try await APIKeyStore(client: client).list(tenantId: acme.id, logger: logger)
            #expect(acmeKeys.map(\.label) == ["a"])
            // Writing another tenant's row while naming one's own is refused by the policy.
            await #expect(throws: (any Error).self) {
                try await client.withTenantTransaction(acme.id, logger: logger) { connection in
                    try await connection.query(
                        """
                        INSERT INTO api_keys (tenant_id, key_hash, display_prefix, scopes)
                        VALUES (\(globex.id), \(ByteBuffer(repeating: 1, count: 32)), 'clk_x', ARRAY['admin'])
                        """, logger: logger)
                }
            }
            // Turning row security off is refused rather than silently showing everything.
            let state = await sqlState(of: "SET LOCAL row_security = off; SELECT * FROM api_keys", on: client)
            #expect(state != nil)
        }
        try await database.withClient(\.superuser) { client throws in
            let count = try await client.query("SELECT count(*) FROM api_keys").collect().first!.decode(Int.self)
            #expect(count == 2)
        }
    }

    @Test func auditEventsRejectChangesEvenFromTheOwnerAndSuperuser() async throws {
        let database = try await TestDatabase.fresh()
        _ = try await database.withClient(\.owner) { client throws in
            try await TenantStore(client: client).create(TenantName("acme")!, logger: database.logger)
        }
        try await database.withClient(\.superuser) { client throws in
            #expect(
                try await client.query("SELECT count(*) FROM audit_events WHERE action = 'tenant.created'")
                    .collect().first!.decode(Int.self) == 1)
            for sql in [
                "UPDATE audit_events SET actor = 'someone'", "DELETE FROM audit_events", "TRUNCATE audit_events",
            ] {
                await #expect(throws: (any Error).self, "\(sql)") {
                    try await client.query(PostgresQuery(unsafeSQL: sql))
                }
            }
            #expect(try await client.query("SELECT count(*) FROM audit_events").collect().first!.decode(Int.self) == 1)
        }
    }

    @Test func everyTenantTableHasForcedRowLevelSecurityWithAPolicy() async throws {
        let database = try await TestDatabase.fresh()
        try await database.withClient(\.superuser) { client throws in
            let rows = try await client.query(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind = 'r'
                  AND (c.relname = 'tenants' OR EXISTS (
                       SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'))
                """
            ).collect()
            #expect(rows.count >= 17)
            for row in rows {
                let (name, enabled, forced, hasPolicy) = try row.decode((String, Bool, Bool, Bool).self)
                #expect(
                    enabled && forced && hasPolicy, "\(name): enabled \(enabled), forced \(forced), policy \(hasPolicy)"
                )
            }
        }
    }

    /// Issue 21: a server that refuses the connection (here: a role it does not know; pg_hba.conf or a wrong
    /// password are refused the same way) is named with its reason. Through the pool the start-up check retried
    /// until its 10 s deadline and said only that nothing answered.
    @Test func aRefusedConnectionIsReportedWithTheServersReason() async throws {
        let database = try await TestDatabase.fresh()
        let stranger = database.app.with(username: "nobody_at_all", database: nil)
        do {
            _ = try await StartupChecks.check(
                stranger, schema: try MigrationRunner.bundled(), allowPrivilegedRole: false, logger: database.logger)
            Issue.record("a role the server does not know was accepted")
        } catch let refused as ConnectionRefused {
            #expect(refused.description.contains("nobody_at_all"), "\(refused)")
            #expect(refused.sqlState == "28000", "invalid authorization specification: \(refused)")
        }
        // Any other error fails the test: before, it was DeadlineExceeded ("no answer within 10 s").
    }

    @Test func startupChecksRefuseSuperuserOwnerAndPendingSchema() async throws {
        let database = try await TestDatabase.fresh()
        let runner = try MigrationRunner.bundled()
        let logger = database.logger
        let app = try await StartupChecks.check(
            database.app, schema: runner, allowPrivilegedRole: false, logger: logger)
        #expect(app.isEmpty)
        let owner = try await StartupChecks.check(
            database.owner, schema: runner, allowPrivilegedRole: false, logger: logger)
        #expect(owner.count == 1 && owner[0].contains("owns"))
        let superuser = try await StartupChecks.check(
            database.superuser, schema: runner, allowPrivilegedRole: false, logger: logger)
        #expect(superuser.count == 1 && superuser[0].contains("superuser"))
        let allowed = try await StartupChecks.check(
            database.superuser, schema: runner, allowPrivilegedRole: true, logger: logger)
        #expect(allowed.isEmpty)

        let empty = try await TestDatabase.fresh(migrated: false)
        let pending = try await StartupChecks.check(
            empty.superuser, schema: runner, allowPrivilegedRole: true, logger: logger)
        #expect(pending.count == 1 && pending[0].contains("pending"))
    }
}
