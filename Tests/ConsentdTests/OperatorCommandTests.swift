import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import Testing

@Suite struct OperatorCommandTests {
    @Test func migrateAppliesOnceThenNothing() async throws {
        let database = try await TestDatabase.fresh(migrated: false)
        let env = ["DATABASE_URL": database.owner.urlString]
        let files = try MigrationRunner.bundled().files.count
        let first = try await ConsentdProcess.run(["migrate"], environment: env)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("applied \(files) migration(s)"))
        let second = try await ConsentdProcess.run(["migrate"], environment: env)
        #expect(second.status == 0)
        #expect(second.stdout.hasPrefix("applied 0 migration(s)"))
    }

    @Test func twoMigrateProcessesAtOnceApplyEachMigrationOnce() async throws {
        let database = try await TestDatabase.fresh(migrated: false)
        let env = ["DATABASE_URL": database.owner.urlString]
        async let first = ConsentdProcess.run(["migrate"], environment: env)
        async let second = ConsentdProcess.run(["migrate"], environment: env)
        let outcomes = try await [first, second]
        #expect(outcomes.allSatisfy { $0.status == 0 }, "\(outcomes.map(\.stderr))")
        let files = try MigrationRunner.bundled().files.count
        #expect(outcomes.map(\.stdout).filter { $0.hasPrefix("applied \(files) ") }.count == 1)
        #expect(outcomes.map(\.stdout).filter { $0.hasPrefix("applied 0 ") }.count == 1)
    }

    @Test func tenantsAndKeysFromTheCommandLine() async throws {
        let database = try await TestDatabase.fresh()
        let env = ["DATABASE_URL": database.owner.urlString]

        let created = try await ConsentdProcess.run(["tenants", "create", "acme"], environment: env)
        #expect(created.status == 0, "\(created.stderr)")
        let tenantID = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(UUID(uuidString: tenantID) != nil)
        let again = try await ConsentdProcess.run(["tenants", "create", "acme"], environment: env)
        #expect(again.status != 0 && again.stderr.contains("already exists"))
        let badName = try await ConsentdProcess.run(["tenants", "create", "Not Valid"], environment: env)
        #expect(badName.status != 0)
        let listed = try await ConsentdProcess.run(["tenants", "list"], environment: env)
        #expect(listed.stdout.contains("\(tenantID)\tacme"))

        let key = try await ConsentdProcess.run(
            ["keys", "create", "--tenant", "acme", "--scope", "consent:write", "consent:check", "--label", "checkout"],
            environment: env)
        #expect(key.status == 0, "\(key.stderr)")
        let lines = key.stdout.split(separator: "\n")
        #expect(lines.count == 1, "keys create must print only the key")
        let token = try #require(APIKeyToken(parsing: lines.first ?? ""))

        let badScope = try await ConsentdProcess.run(
            ["keys", "create", "--tenant", "acme", "--scope", "root"], environment: env)
        #expect(badScope.status != 0 && badScope.stderr.contains("unknown scope 'root'"))
        let noTenant = try await ConsentdProcess.run(
            ["keys", "create", "--tenant", "nobody", "--scope", "dpo"], environment: env)
        #expect(noTenant.status != 0 && noTenant.stderr.contains("no tenant is named 'nobody'"))

        let keys = try await ConsentdProcess.run(["keys", "list", "--tenant", "acme"], environment: env)
        let row = try #require(keys.stdout.split(separator: "\n").first)
        #expect(
            row.contains("consent:write,consent:check") && row.contains("active") && row.contains(token.displayPrefix))
        #expect(!keys.stdout.contains(token.value), "a listing must never show the key")
        let keyID = String(row.split(separator: "\t")[0])

        try await database.withClient(\.app) { client throws in
            #expect(try await APIKeyStore(client: client).authenticate(token, logger: database.logger) != nil)
        }
        let revoked = try await ConsentdProcess.run(["keys", "revoke", "--tenant", "acme", keyID], environment: env)
        #expect(revoked.status == 0, "\(revoked.stderr)")
        try await database.withClient(\.app) { client throws in
            #expect(try await APIKeyStore(client: client).authenticate(token, logger: database.logger) == nil)
        }
    }

    @Test func theRuntimeRoleCannotCreateTenants() async throws {
        let database = try await TestDatabase.fresh()
        let outcome = try await ConsentdProcess.run(
            ["tenants", "create", "acme"], environment: ["DATABASE_URL": database.app.urlString])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("use the owner's DATABASE_URL"), "\(outcome.stderr)")
    }
}

@Suite struct RotateMasterCommandTests {
    @Test func rotateMasterRewrapsStoredKeysAndSaysWhenTheOldKeyCanGo() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let (old, new) = (SecretBytes.random32(), SecretBytes.random32())
        let (tenantId, before) = try await database.withClient(\.owner) { client in
            let tenant = try await TenantStore(client: client).create(TenantName("acme")!, logger: logger)
            let key = try await TenantKeyring(masterKey: old).blindIndexKey(
                tenantId: tenant.id, client: client, logger: logger)
            return (tenant.id, key.withUnsafeBytes { Array($0) })
        }
        let env = ["DATABASE_URL": database.app.urlString, "CONSENTD_MASTER_KEY": new.base64]

        let unnamed = try await ConsentdProcess.run(["keys", "rotate-master"], environment: env)
        #expect(unnamed.status != 0 && unnamed.stderr.contains("CONSENTD_UNWRAP_MASTER_KEYS"), "\(unnamed.stderr)")
        let wrongOld = try await ConsentdProcess.run(
            ["keys", "rotate-master"],
            environment: env.merging(["CONSENTD_UNWRAP_MASTER_KEYS": SecretBytes.random32().base64]) { $1 })
        #expect(
            wrongOld.status != 0 && wrongOld.stderr.contains("keep the old key"),
            "\(wrongOld.stdout) \(wrongOld.stderr)")
        #expect(!wrongOld.stdout.contains(new.base64) && !wrongOld.stderr.contains(new.base64))

        let rotated = try await ConsentdProcess.run(
            ["keys", "rotate-master"], environment: env.merging(["CONSENTD_UNWRAP_MASTER_KEYS": old.base64]) { $1 })
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(
            rotated.stdout.contains("re-wrapped 1 tenant keys, 0 subject keys and 0 import keys"), "\(rotated.stdout)")
        #expect(rotated.stdout.contains("the old master key can be retired"))
        let after = try await database.withClient(\.app) { client in
            try await TenantKeyring(masterKey: new).blindIndexKey(tenantId: tenantId, client: client, logger: logger)
                .withUnsafeBytes { Array($0) }
        }
        #expect(after == before, "the key is the same, only its wrapping changed")
    }
}
