import ConsentCore
import ConsentStore
import ConsentTesting
import Foundation
import Testing

@Suite struct APIKeyStoreTests {
    @Test func keysAuthenticateUntilRevoked() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let (tenant, issued) = try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName("acme")!, logger: logger)
            let issued = try await APIKeyStore(client: client).create(
                tenantId: tenant.id, scopes: [.consentWrite, .consentCheck], label: "checkout", logger: logger)
            return (tenant, issued)
        }
        try await database.withClient(\.app) { client throws in
            let keys = APIKeyStore(client: client)
            let identity = try await keys.authenticate(issued.token, logger: logger)
            #expect(
                identity
                    == CallerIdentity(
                        keyId: issued.record.id, tenantId: tenant.id, scopes: [.consentWrite, .consentCheck]))
            #expect(try await keys.authenticate(APIKeyToken.generate(), logger: logger) == nil)

            #expect(try await keys.revoke(tenantId: tenant.id, keyId: issued.record.id, logger: logger))
            #expect(try await keys.authenticate(issued.token, logger: logger) == nil)
            #expect(try await keys.revoke(tenantId: tenant.id, keyId: issued.record.id, logger: logger) == false)
            let listed = try await keys.list(tenantId: tenant.id, logger: logger)
            #expect(listed.count == 1 && listed[0].revokedAt != nil && listed[0].label == "checkout")
        }
    }

    @Test func anotherTenantCannotListOrRevokeAKey() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        let (globex, issued) = try await database.withClient(\.owner) { client throws in
            let tenants = TenantStore(client: client)
            let acme = try await tenants.create(TenantName("acme")!, logger: logger)
            let globex = try await tenants.create(TenantName("globex")!, logger: logger)
            let issued = try await APIKeyStore(client: client).create(
                tenantId: acme.id, scopes: [.dpo], label: "", logger: logger)
            return (globex, issued)
        }
        try await database.withClient(\.app) { client throws in
            let keys = APIKeyStore(client: client)
            #expect(try await keys.list(tenantId: globex.id, logger: logger).isEmpty)
            #expect(try await keys.revoke(tenantId: globex.id, keyId: issued.record.id, logger: logger) == false)
            #expect(try await keys.authenticate(issued.token, logger: logger) != nil)
        }
    }

    @Test func tenantNamesAreUniqueAndFoundByName() async throws {
        let database = try await TestDatabase.fresh()
        let logger = database.logger
        try await database.withClient(\.owner) { client throws in
            let tenants = TenantStore(client: client)
            let created = try await tenants.create(TenantName("acme")!, logger: logger)
            await #expect(throws: TenantStoreError.nameTaken("acme")) {
                try await tenants.create(TenantName("acme")!, logger: logger)
            }
            #expect(try await tenants.named("acme", logger: logger) == created)
            await #expect(throws: TenantStoreError.notFound("nobody")) {
                try await tenants.named("nobody", logger: logger)
            }
            #expect(try await tenants.list(logger: logger).map(\.name) == ["acme"])
        }
    }
}
