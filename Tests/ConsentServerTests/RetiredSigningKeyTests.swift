import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import Testing

/// Issue 21, finding 8, through the service: after a rotation its own verification (the console's, the API's)
/// accepts the checkpoints the retired key signed only when `CONSENTD_RETIRED_SIGNING_KEYS` names it.
@Suite struct RetiredSigningKeyTests {
    @Test func theServiceVerifiesALogSignedBeforeARotationOnlyWithTheRetiredKeyNamed() async throws {
        let database = try await TestDatabase.fresh()
        let tenant = try await SeededTenant.make("acme", in: database)
        let retired = try CheckpointSigner(
            seed: SecretBytes(Array(repeating: 0x77, count: 32)), originPrefix: "consentledger.test")
        let signed = try await database.withClient(\.app) { client in
            try await AuditSequencer(client: client, signer: retired).sequenceAll(logger: database.logger)
        }
        #expect(signed > 0, "the tenant's set-up events, signed by the key that is then retired")

        for named in [false, true] {
            let retiredKeys = named ? [retired.publicKey] : []
            let configure = { (dependencies: inout ServerDependencies) in
                dependencies.retiredSigningKeys = retiredKeys
            }
            let page = try await withRunningApp(database, configure: configure) { client in
                let api = APIClient(client: client, tenant: tenant)
                let console = try #require(try await ConsoleBrowser.signIn(api).1)
                _ = try await console.post("/console/audit/verify", [:])
                return try await console.get("/console/audit").text
            }
            #expect(page.contains("every hash and signature checks") == named, "retired key named: \(named)")
            if !named { #expect(page.contains("not among the keys given"), "\(page)") }
        }
    }
}
