import ArgumentParser
import ConsentCore
import ConsentStore
import Foundation
import Logging
import PostgresNIO

struct Tenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and list tenants (run with the owner's DATABASE_URL).",
        subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a tenant and print its id.")
        @Argument(help: "The tenant's name: \(TenantName.rule).") var name: String

        func run() async throws {
            guard let tenantName = TenantName(name) else {
                throw CommandFailure("'\(name)' is not a valid tenant name: \(TenantName.rule)")
            }
            let tenant = try await withOperatorDatabase { client, logger in
                try await TenantStore(client: client).create(tenantName, logger: logger)
            }
            print(tenant.id.lowercased)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tenants: id, name, creation time.")

        func run() async throws {
            let tenants = try await withOperatorDatabase { client, logger in
                try await TenantStore(client: client).list(logger: logger)
            }
            for tenant in tenants {
                print("\(tenant.id.lowercased)\t\(tenant.name)\t\(tenant.createdAt.formatted(.iso8601))")
            }
        }
    }
}

/// The database named by DATABASE_URL, for one operator command; store errors become plain messages.
func withOperatorDatabase<Result: Sendable>(
    _ body: @escaping @Sendable (PostgresClient, Logger) async throws -> Result
) async throws -> Result {
    let logger = Logger(label: "consentd")
    let url: DatabaseURL
    do {
        url = try EnvironmentReader.databaseURL(environment)
    } catch {
        throw CommandFailure(error.description)
    }
    do {
        return try await withRunningClient(url, logger: logger) { client in try await body(client, logger) }
    } catch let error as TenantStoreError {
        throw CommandFailure(error.description)
    } catch  where DatabaseErrors.sqlState(error) == DatabaseErrors.insufficientPrivilege {
        throw CommandFailure(
            "the role in DATABASE_URL may not do this (\(DatabaseErrors.serverMessage(error) ?? "permission denied")); use the owner's DATABASE_URL"
        )
    }
}
