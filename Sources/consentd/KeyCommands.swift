import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke a tenant's API keys (run with the owner's DATABASE_URL).",
        subcommands: [Create.self, List.self, Revoke.self])

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
}
