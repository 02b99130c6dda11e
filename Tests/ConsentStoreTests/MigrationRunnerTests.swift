import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

@Suite struct MigrationRunnerTests {
    let appRole = TestDatabase.appRole

    func appliedRows(_ client: PostgresClient) async throws -> [(Int, String, Date)] {
        var rows: [(Int, String, Date)] = []
        for try await row in try await client.query(
            "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version"
        ).decode((Int, String, Date).self) {
            rows.append(row)
        }
        return rows
    }

    @Test func migratesAnEmptyDatabaseThenReRunsAsANoOp() async throws {
        let database = try await TestDatabase.fresh(migrated: false)
        let runner = try MigrationRunner.bundled()
        try await database.withClient(\.owner) { client throws in
            #expect(try await runner.state(client: client, logger: database.logger) == .pending(runner.files))

            let first = try await runner.migrate(client: client, appRole: appRole, logger: database.logger)
            #expect(first == runner.files)
            let afterFirst = try await appliedRows(client)
            #expect(afterFirst.map(\.0) == runner.files.map(\.version))
            #expect(afterFirst.map(\.1) == runner.files.map(\.checksum))
            #expect(try await runner.state(client: client, logger: database.logger) == .current)

            let second = try await runner.migrate(client: client, appRole: appRole, logger: database.logger)
            #expect(second.isEmpty)
            let afterSecond = try await appliedRows(client)
            #expect(afterSecond.map(\.2) == afterFirst.map(\.2), "re-running must not re-apply anything")
        }
    }

    @Test func aTamperedAppliedMigrationIsRefusedAndChangesNothing() async throws {
        let database = try await TestDatabase.fresh()
        let bundled = try MigrationRunner.bundled()
        var files = bundled.files
        let original = files[0]
        files[0] = MigrationFile(version: original.version, name: original.name, sql: original.sql + "\n-- edited\n")
        let tampered = MigrationRunner(files: files, grantsTemplate: bundled.grantsTemplate)
        try await database.withClient(\.owner) { client throws in
            await #expect(throws: MigrationProblem.changedAfterApply(version: original.version, name: original.name)) {
                try await tampered.migrate(client: client, appRole: appRole, logger: database.logger)
            }
            #expect(
                try await tampered.state(client: client, logger: database.logger)
                    == .problem(.changedAfterApply(version: original.version, name: original.name)))
            #expect(try await appliedRows(client).map(\.1) == bundled.files.map(\.checksum))
        }
    }

    @Test func aFailingMigrationLeavesNoTrace() async throws {
        let database = try await TestDatabase.fresh()
        let bundled = try MigrationRunner.bundled()
        let broken = MigrationFile(
            version: 9000, name: "broken", sql: "CREATE TABLE half_done (x int);\nSELEC nonsense;")
        let runner = MigrationRunner(files: bundled.files + [broken], grantsTemplate: bundled.grantsTemplate)
        try await database.withClient(\.owner) { client throws in
            let error = await #expect(throws: MigrationFailed.self) {
                try await runner.migrate(client: client, appRole: appRole, logger: database.logger)
            }
            #expect(error?.version == 9000 && error?.sqlState == "42601")
            let tables = try await client.query("SELECT to_regclass('half_done') IS NULL").collect()
            #expect(try tables.first?.decode(Bool.self) == true)
            #expect(try await appliedRows(client).map(\.0) == bundled.files.map(\.version))
            #expect(try await runner.state(client: client, logger: database.logger) == .pending([broken]))
        }
    }

    @Test func concurrentRunsApplyEachMigrationOnce() async throws {
        let database = try await TestDatabase.fresh(migrated: false)
        let runner = try MigrationRunner.bundled()
        let logger = database.logger
        let appliedByEach = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await database.withClient(\.owner) { client throws in
                        try await runner.migrate(client: client, appRole: appRole, logger: logger).count
                    }
                }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(appliedByEach.reduce(0, +) == runner.files.count)
        #expect(appliedByEach.filter { $0 > 0 }.count == 1)
        try await database.withClient(\.owner) { client throws in
            #expect(try await appliedRows(client).map(\.0) == runner.files.map(\.version))
        }
    }

    @Test func tablesAreOwnedByTheOwnerNotTheRuntimeRole() async throws {
        let database = try await TestDatabase.fresh()
        try await database.withClient(\.superuser) { client throws in
            let owners = try await client.query(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).collect().map { try $0.decode(String.self) }
            #expect(owners == [DatabaseProvisioner.ownerRole])
        }
    }
}
