import ConsentCore
import ConsentStore
import Foundation
import LocalPostgres
import Logging
import PostgresNIO
import Synchronization

/// One PostgreSQL for the whole test run, reached through the same code the service uses.
///
/// With `TEST_DATABASE_URL` (a superuser, or a role with CREATEDB and CREATEROLE) the tests use that server;
/// otherwise they start a private cluster in a temporary folder, stopped and removed when the process exits.
/// There is no skipping: without PostgreSQL the tests fail with the command that installs it.
public actor TestPostgres {
    public static let shared = TestPostgres()

    struct Provisioned: Sendable {
        let superuser: DatabaseURL
        let template: String
    }

    private var provisioning: Task<Provisioned, any Error>?

    func provisioned() async throws -> Provisioned {
        if let provisioning { return try await provisioning.value }
        let task = Task { try await Self.provision() }
        provisioning = task
        return try await task.value
    }

    public static let logger: Logger = {
        var logger = Logger(label: "consent-tests")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    static let runID = String(UUID().uuidString.prefix(8)).lowercased()

    private static func provision() async throws -> Provisioned {
        let superuser: DatabaseURL
        if let given = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !given.isEmpty {
            superuser = try DatabaseURL(parsing: given)
        } else {
            superuser = try startPrivateCluster()
        }
        let template = "consentd_template_\(runID)"
        try await withRunningClient(superuser, logger: logger) { client in
            try await DatabaseProvisioner.ensureOwnerRole(superuser: client, logger: logger)
            try await DatabaseProvisioner.ensureDatabase(template, superuser: client, logger: logger)
        }
        try await withRunningClient(
            superuser.with(username: DatabaseProvisioner.ownerRole, database: template), logger: logger
        ) { client in
            try await MigrationRunner.bundled().migrate(client: client, appRole: TestDatabase.appRole, logger: logger)
        }
        return Provisioned(superuser: superuser, template: template)
    }

    private static func startPrivateCluster() throws -> DatabaseURL {
        let base = NSTemporaryDirectory() + "consentd-test-\(runID)"
        let cluster = try LocalCluster(baseDirectory: base, durability: .throwaway)
        try cluster.initializeIfNeeded(logger: logger)
        try cluster.start(logger: logger)
        ClusterCleanup.register(cluster)
        return cluster.superuserURL
    }
}

/// Stops the private cluster when the test process exits: Swift Testing has no run-wide teardown.
enum ClusterCleanup {
    static let cluster = Mutex<LocalCluster?>(nil)

    static func register(_ cluster: LocalCluster) {
        Self.cluster.withLock { $0 = cluster }
        atexit {
            guard let cluster = ClusterCleanup.cluster.withLock({ $0 }) else { return }
            cluster.stop(logger: TestPostgres.logger)
            try? FileManager.default.removeItem(atPath: cluster.baseDirectory)
        }
    }
}

/// A database of its own for one test: migrated (a copy of the run's template) or empty.
public struct TestDatabase: Sendable {
    public static let appRole = "consentd_app"

    public let name: String
    /// A superuser on this database: for set-up and for checks that must see past row-level security.
    public let superuser: DatabaseURL
    /// The role that owns the tables, as `consentd migrate` runs.
    public let owner: DatabaseURL
    /// The runtime role, as `consentd serve` runs.
    public let app: DatabaseURL

    public static func fresh(migrated: Bool = true) async throws -> TestDatabase {
        let provisioned = try await TestPostgres.shared.provisioned()
        let name = "consentd_test_\(TestPostgres.runID)_\(UUID().uuidString.prefix(8).lowercased())"
        try await withRunningClient(provisioned.superuser, logger: TestPostgres.logger) { client in
            try await DatabaseProvisioner.ensureDatabase(
                name, template: migrated ? provisioned.template : nil, superuser: client, logger: TestPostgres.logger)
        }
        let superuser = provisioned.superuser.with(
            username: provisioned.superuser.username, password: provisioned.superuser.password, database: name)
        return TestDatabase(
            name: name, superuser: superuser,
            owner: superuser.with(username: DatabaseProvisioner.ownerRole, database: name),
            app: superuser.with(username: appRole, database: name))
    }

    public var logger: Logger { TestPostgres.logger }

    /// A pool on this database as `role`, running for the length of `body`.
    public func withClient<Result: Sendable>(
        _ url: KeyPath<TestDatabase, DatabaseURL> = \.app, _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        try await withRunningClient(self[keyPath: url], logger: logger, body)
    }

    /// A number from SQL run as the superuser, past row-level security: what is really stored.
    public func count(_ sql: String) async throws -> Int {
        try await withClient(\.superuser) { client throws in
            let rows = try await client.query(PostgresQuery(unsafeSQL: sql)).collect()
            return try rows.first?.decode(Int?.self) ?? 0
        }
    }
}
