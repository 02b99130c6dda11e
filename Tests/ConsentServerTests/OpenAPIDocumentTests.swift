import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

/// `docs/openapi.yaml` is the contract: every route the router serves is documented, and nothing documented is
/// missing from the router.
@Suite struct OpenAPIDocumentTests {
    static let document = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml")

    /// "METHOD /path" for each operation, read from the document's `paths:` block by its indentation.
    static func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOf: document, encoding: .utf8)
        var operations = Set<String>()
        var inPaths = false
        var currentPath: String?
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options"]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            guard inPaths else { continue }
            if !line.isEmpty, !line.hasPrefix(" ") { break }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"), let path = currentPath {
                let method = String(line.dropFirst(4).dropLast())
                if methods.contains(method) { operations.insert("\(method.uppercased()) \(path)") }
            }
        }
        return operations
    }

    @Test func everyServedRouteIsDocumentedAndViceVersa() async throws {
        var configuration = PostgresClient.Configuration(
            host: "localhost", username: "unused", password: nil, database: nil, tls: .disable)
        configuration.options.maximumConnections = 1
        // Building the router opens no connection; the client is never run.
        let client = PostgresClient(configuration: configuration)
        let router = try await ConsentApplication.router(
            ServerDependencies(
                database: ConsentDatabase(
                    client: client,
                    connector: DedicatedConnector(
                        url: DatabaseURL(
                            endpoint: .tcp(host: "localhost", port: 5432), username: "unused", password: nil,
                            database: "unused", tls: .disable)),
                    keyring: TenantKeyring(masterKey: .random32()), checkCache: nil, poolSize: 20),
                schema: try MigrationRunner.bundled(), checkpointSigner: testCheckpointSigner))
        let served = Set(
            router.routes.map { "\($0.method.rawValue) \($0.path.description.hasPrefix("/") ? "" : "/")\($0.path)" })
        let documented = try Self.documentedOperations()
        #expect(!served.isEmpty)
        #expect(
            served.subtracting(documented).isEmpty,
            "served but undocumented: \(served.subtracting(documented).sorted())")
        #expect(
            documented.subtracting(served).isEmpty,
            "documented but not served: \(documented.subtracting(served).sorted())")
    }
}
