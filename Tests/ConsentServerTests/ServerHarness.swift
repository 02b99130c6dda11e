import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The real application on a test database, connected as the runtime role, driven through the real router.
func withApp<Value: Sendable>(
    _ database: TestDatabase, subjectRights: SubjectRightsPolicy = .default, checkCache: ConsentStateCache? = nil,
    masterKey: SecretBytes = .random32(), collection: CollectionPolicy = .default, rateLimits: RateLimits = .default,
    checkClock: (@Sendable () -> Date)? = nil, poolSize: Int = 20, live: Bool = false,
    configure: (inout ServerDependencies) -> Void = { _ in },
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let client = PostgresClient(url: database.app, maximumConnections: poolSize, logger: database.logger)
    var dependencies = ServerDependencies(
        database: ConsentDatabase(
            client: client, connector: DedicatedConnector(url: database.app),
            keyring: TenantKeyring(masterKey: masterKey),
            checkCache: checkCache, poolSize: poolSize),
        schema: try MigrationRunner.bundled(), checkpointSigner: testCheckpointSigner, subjectRights: subjectRights,
        collection: collection)
    dependencies.rateLimits = rateLimits
    // The whole suite runs some hundred tests at once on two cores, where an export waiting for the sequencer has
    // taken longer than the service's 30 s. What a test checks is the answer, not the default deadline; the tests
    // of deadlines set their own.
    dependencies.requestTimeout = .seconds(120)
    if let checkClock { dependencies.checkClock = checkClock }
    configure(&dependencies)
    let app = try await ConsentApplication.make(
        dependencies,
        host: "127.0.0.1", port: 0,
        logger: database.logger)
    // `live` serves on a real socket (`client.port`), for the tests that must write bytes as a client would.
    return try await app.test(live ? .live : .router, body)
}

/// A fixed key, so tests can verify checkpoints independently of the server.
let testCheckpointSeed = SecretBytes(Array(repeating: 0x5A, count: 32))
let testCheckpointSigner = try! CheckpointSigner(seed: testCheckpointSeed, originPrefix: "consentledger.test")

/// A tenant with one key per scope, made as the operator would.
struct SeededTenant: Sendable {
    let tenant: Tenant
    let keys: [Scope: IssuedAPIKey]

    func bearer(_ scope: Scope) -> HTTPFields {
        [.authorization: "Bearer \(keys[scope]!.token.value)"]
    }

    static func make(_ name: String, in database: TestDatabase) async throws -> SeededTenant {
        try await database.withClient(\.owner) { client throws in
            let tenant = try await TenantStore(client: client).create(TenantName(name)!, logger: database.logger)
            var keys: [Scope: IssuedAPIKey] = [:]
            for scope in Scope.allCases {
                keys[scope] = try await APIKeyStore(client: client).create(
                    tenantId: tenant.id, scopes: [scope], label: scope.rawValue, logger: database.logger)
            }
            return SeededTenant(tenant: tenant, keys: keys)
        }
    }
}

/// The contract's error body.
struct ErrorBody: Decodable, Equatable {
    struct Detail: Decodable, Equatable {
        let code: String
        let message: String
        let field: String?
    }
    let error: Detail
}

extension TestResponse {
    func decoded<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(buffer: body))
    }
}

/// `withApp` with the metrics listener on a free loopback port, whose `/metrics` URL the body gets.
func withMetricsApp(
    _ database: TestDatabase, checkCache: ConsentStateCache? = nil,
    _ body: @escaping @Sendable (any TestClientProtocol, URL) async throws -> Void
) async throws {
    let portBox = MetricsPortBox()
    let listenForMetrics: (inout ServerDependencies) -> Void = { dependencies in
        dependencies.metricsAddress = ListenAddress(host: "127.0.0.1", port: 0)
        dependencies.onMetricsRunning = { bound in portBox.set(bound) }
    }
    try await withApp(database, checkCache: checkCache, configure: listenForMetrics) { client in
        var bound: Int?
        for _ in 0..<200 {
            bound = portBox.get()
            if bound != nil { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        let port = try #require(bound)
        let url = try #require(URL(string: "http://127.0.0.1:\(port)/metrics"))
        try await body(client, url)
    }
}

/// The metrics listener's port, told by the server once it is bound.
private final class MetricsPortBox: Sendable {
    let port = Mutex<Int?>(nil)
    func set(_ value: Int) { port.withLock { $0 = value } }
    func get() -> Int? { port.withLock { $0 } }
}
