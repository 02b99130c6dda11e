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
        logger.logLevel =
            ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    static let runID = String(UUID().uuidString.prefix(8)).lowercased()

    private static func provision() async throws -> Provisioned {
        let superuser: DatabaseURL
        let template = "consentd_template_\(runID)"
        if let given = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !given.isEmpty {
            superuser = try DatabaseURL(parsing: given)
            // Registered before the template exists, so a run that fails half-way still cleans up after itself.
            GivenServerCleanup.register(superuser: superuser, template: template)
        } else {
            superuser = try startPrivateCluster()
        }
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

/// What a run leaves on a server given by `TEST_DATABASE_URL`, which outlives the run: each test's database is
/// dropped when the test is done with it (its last `TestDatabase` goes), and at exit whatever is still there under
/// this run's prefix (a drop that found the database still in use, or had not finished) and the run's template.
/// The private cluster needs none of this: it is removed whole at exit, and its path does no extra work.
enum GivenServerCleanup {
    struct State {
        var superuser: DatabaseURL?
        var template: String?
        var drops: [UUID: Task<Void, Never>] = [:]
    }

    static let state = Mutex(State())

    static var isActive: Bool { state.withLock { $0.superuser != nil } }

    static func register(superuser: DatabaseURL, template: String) {
        state.withLock {
            $0.superuser = superuser
            $0.template = template
        }
        atexit { GivenServerCleanup.dropEverythingLeft() }
    }

    /// Drops `name` in the background. A database that is still in use (a pool closing, a child process exiting)
    /// is tried again a little later, and otherwise left to the sweep at exit: never forced while a test may hold it.
    static func drop(_ name: String, superuser: DatabaseURL) {
        let id = UUID()
        state.withLock { state in
            state.drops[id] = Task.detached {
                for delay in [0, 500, 2_000] {
                    if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
                    if (try? await execute("DROP DATABASE IF EXISTS \"\(name)\"", on: superuser)) != nil { break }
                }
                _ = GivenServerCleanup.state.withLock { $0.drops.removeValue(forKey: id) }
            }
        }
    }

    /// At exit: waits for the drops under way, then drops, forcing now, every database of this run still there.
    static func dropEverythingLeft() {
        let (superuser, template, drops) = state.withLock { ($0.superuser, $0.template, Array($0.drops.values)) }
        guard let superuser, let template else { return }
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            for drop in drops { await drop.value }
            _ = try? await withRunningClient(superuser, maximumConnections: 1, logger: TestPostgres.logger) { client in
                let pattern = "consentd\\_test\\_\(TestPostgres.runID)\\_%"
                let names = try await client.query(
                    "SELECT datname FROM pg_database WHERE datname LIKE \(pattern)", logger: TestPostgres.logger
                ).collect().map { try $0.decode(String.self) }
                for name in names + [template] {
                    _ = try? await client.query(
                        PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)"),
                        logger: TestPostgres.logger)
                }
            }
            done.signal()
        }
        _ = done.wait(timeout: .now() + 60)
    }

    static func execute(_ sql: String, on superuser: DatabaseURL) async throws {
        try await withRunningClient(superuser, maximumConnections: 1, logger: TestPostgres.logger) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: TestPostgres.logger)
        }
    }
}

/// Held by every copy of one test's `TestDatabase`: when the last copy goes, the test is done with the database.
/// A test's local `let database` lives to the end of its scope (a deinit with effects ends lexical lifetimes no
/// earlier), so a test that hands `database.owner` to a child process keeps the database until it returns; and since
/// the drop is never forced, a database something still uses is left for the sweep at exit rather than pulled away.
final class DatabaseLease: Sendable {
    let name: String
    let superuser: DatabaseURL

    init(name: String, superuser: DatabaseURL) {
        self.name = name
        self.superuser = superuser
    }

    deinit { GivenServerCleanup.drop(name, superuser: superuser) }
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
    /// On a server given by `TEST_DATABASE_URL`: drops the database once no copy of this value is left.
    let lease: DatabaseLease?

    /// The name of each test's database: the run's prefix (`GivenServerCleanup` drops what is left under it at exit).
    static func uniqueName() -> String {
        "consentd_test_\(TestPostgres.runID)_\(UUID().uuidString.prefix(8).lowercased())"
    }

    public static func fresh(migrated: Bool = true) async throws -> TestDatabase {
        let provisioned = try await TestPostgres.shared.provisioned()
        let name = uniqueName()
        try await withRunningClient(provisioned.superuser, logger: TestPostgres.logger) { client in
            try await DatabaseProvisioner.ensureDatabase(
                name, template: migrated ? provisioned.template : nil, superuser: client, logger: TestPostgres.logger)
        }
        let superuser = provisioned.superuser.with(
            username: provisioned.superuser.username, password: provisioned.superuser.password, database: name)
        return TestDatabase(
            name: name, superuser: superuser,
            owner: superuser.with(username: DatabaseProvisioner.ownerRole, database: name),
            app: superuser.with(username: appRole, database: name),
            lease: GivenServerCleanup.isActive ? DatabaseLease(name: name, superuser: provisioned.superuser) : nil)
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
