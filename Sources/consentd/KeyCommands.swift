import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Create, list and revoke a tenant's API keys (run with the owner's DATABASE_URL); rotate the master key.",
        subcommands: [Create.self, List.self, Revoke.self, RotateMaster.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print only the key; it is shown once and stored hashed.")
        @Option(help: "The tenant's name.") var tenant: String
        @Option(
            parsing: .upToNextOption,
            help: "One or more of: \(Scope.allCases.map(\.rawValue).joined(separator: ", ")).")
        var scope: [String]
        @Option(help: "A note for the key's owner to recognise it by.") var label: String = ""

        func run() async throws {
            let scopes: Set<Scope>
            switch Scope.parse(scope) {
            case .success(let parsed) where !parsed.isEmpty: scopes = parsed
            case .success: throw CommandFailure("name at least one --scope")
            case .failure(let unknown): throw CommandFailure(unknown.description)
            }
            let (tenantName, label) = (tenant, label)
            let issued = try await withOperatorDatabase { client, logger in
                let tenant = try await TenantStore(client: client).named(tenantName, logger: logger)
                return try await APIKeyStore(client: client).create(
                    tenantId: tenant.id, scopes: scopes, label: label, logger: logger)
            }
            print(issued.token.value)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a tenant's keys: id, prefix, scopes, created, revoked, label.")
        @Option(help: "The tenant's name.") var tenant: String

        func run() async throws {
            let tenantName = tenant
            let records = try await withOperatorDatabase { client, logger in
                let tenant = try await TenantStore(client: client).named(tenantName, logger: logger)
                return try await APIKeyStore(client: client).list(tenantId: tenant.id, logger: logger)
            }
            for record in records {
                let revoked = record.revokedAt.map { "revoked \($0.formatted(.iso8601))" } ?? "active"
                let scopes = record.scopes.sorted().map(\.rawValue).joined(separator: ",")
                print(
                    "\(record.id.lowercased)\t\(record.displayPrefix)…\t\(scopes)\t\(record.createdAt.formatted(.iso8601))\t\(revoked)\t\(record.label)"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; it stops working at once.")
        @Option(help: "The tenant's name.") var tenant: String
        @Argument(help: "The key's id, as `keys list` prints it.") var keyId: String

        func run() async throws {
            guard let id = UUID(uuidString: keyId) else { throw CommandFailure("'\(keyId)' is not a key id") }
            let tenantName = tenant
            let revoked = try await withOperatorDatabase { client, logger in
                let tenant = try await TenantStore(client: client).named(tenantName, logger: logger)
                return try await APIKeyStore(client: client).revoke(tenantId: tenant.id, keyId: id, logger: logger)
            }
            guard revoked else { throw CommandFailure("tenant \(tenantName) has no live key \(keyId)") }
            print("revoked \(id.lowercased)")
        }
    }

    struct RotateMaster: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-master",
            abstract:
                "Re-wrap every stored key under CONSENTD_MASTER_KEY, unwrapping with CONSENTD_UNWRAP_MASTER_KEYS.",
            discussion: """
                Ciphertexts are not touched and servers keep serving: run it once every server accepts both keys \
                (docs/operations.md, "Rotating the master key"). Safe to interrupt and run again. Exits 0 when \
                nothing is left under another master key, so the old one can be retired.
                """)

        func run() async throws {
            let master: SecretBytes
            let unwrapOnly: [SecretBytes]
            do {
                master = try EnvironmentReader.key32(environment, "CONSENTD_MASTER_KEY", purpose: "the new master key")
                unwrapOnly = try EnvironmentReader.unwrapMasterKeys(environment)
            } catch {
                throw CommandFailure(error.description)
            }
            guard !unwrapOnly.isEmpty else {
                throw CommandFailure(
                    "CONSENTD_UNWRAP_MASTER_KEYS is not set; name the master key(s) the stored keys are wrapped under now"
                )
            }
            let keyring = TenantKeyring(masterKey: master, unwrapOnly: unwrapOnly)
            let report = try await withOperatorDatabase { client, logger in
                try await MasterKeyRotation(client: client, keyring: keyring).run(logger: logger)
            }
            print(
                "master key \(keyring.masterKeyId): re-wrapped \(report.tenantKeys) tenant keys, \(report.subjectKeys) subject keys and \(report.importKeys) import keys"
            )
            if report.unreadable > 0 {
                print(
                    "\(report.unreadable) keys open under none of the configured master keys and were left as they are")
            }
            guard report.remaining == 0 else {
                throw CommandFailure(
                    "\(report.remaining) keys are still wrapped under another master key; keep the old key and run again"
                )
            }
            print("no key is wrapped under another master key: the old master key can be retired")
        }
    }
}
