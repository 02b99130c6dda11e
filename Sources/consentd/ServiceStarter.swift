import ConsentCore
import ConsentServer
import ConsentStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// What `serve` and `dev` share: refuse a database that is not fit to serve, then serve until SIGTERM/SIGINT.
enum ServiceStarter {
    static func run(
        _ configuration: ServeConfiguration, demoShop: DemoShop? = nil, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let schema = try MigrationRunner.bundled()
        let refusals: [String]
        do {
            refusals = try await StartupChecks.check(
                configuration.database, schema: schema,
                allowPrivilegedRole: configuration.allowPrivilegedRole, logger: logger)
        } catch {
            throw CommandFailure(
                "cannot reach the database named by DATABASE_URL (\(configuration.database.redacted)): \(error)")
        }
        guard refusals.isEmpty else {
            throw CommandFailure("refusing to serve:\n  - " + refusals.joined(separator: "\n  - "))
        }
        // The pool and the connections held outside it share one name in `pg_stat_activity`, the latter with
        // their role after it (`<name>-listener`).
        let applicationName = PostgresClient.Configuration.uniqueApplicationName()
        let client = PostgresClient(
            configuration: .init(
                configuration.database, maximumConnections: configuration.databasePoolSize,
                applicationName: applicationName),
            backgroundLogger: logger)
        let database = ConsentDatabase(
            client: client,
            connector: DedicatedConnector(url: configuration.database, applicationName: applicationName),
            keyring: TenantKeyring(masterKey: configuration.masterKey, unwrapOnly: configuration.unwrapMasterKeys),
            checkCache: configuration.checkCacheEntries > 0
                ? ConsentStateCache(capacity: configuration.checkCacheEntries) : nil,
            poolSize: configuration.databasePoolSize,
            writeGroupDeadline: .seconds(configuration.requestTimeoutSeconds))
        var dependencies = ServerDependencies(
            database: database, schema: schema, checkpointSigner: try configuration.checkpointSigner(),
            subjectRights: configuration.subjectRights, collection: configuration.collection)
        dependencies.demoShop = demoShop
        dependencies.consoleIdleTimeout = Double(configuration.consoleIdleMinutes) * 60
        dependencies.rateLimits = configuration.rateLimits
        dependencies.requestTimeout = .seconds(configuration.requestTimeoutSeconds)
        dependencies.sendPolicy = configuration.sendPolicy
        dependencies.retiredSigningKeys = configuration.retiredSigningKeys
        dependencies.metricsAddress = configuration.metrics
        dependencies.webhookTargets = configuration.webhookTargets
        dependencies.onMetricsRunning = { [host = configuration.metrics?.host ?? ""] port in
            logger.info("serving /metrics", metadata: ["metrics": "\(host):\(port)"])
        }
        let app = try await ConsentApplication.make(
            dependencies,
            host: configuration.host, port: configuration.port,
            logger: logger, onServerRunning: onRunning)
        // SIGTERM ends the service within a bound whatever the database does (issue 21): in-flight requests get
        // their deadline and a little more to finish, then everything still running is cancelled, and a task that
        // ignores even that ends the process after 5 s more (ServiceLifecycle stops it with a fatal error).
        var group = ServiceGroupConfiguration(
            services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = Self.shutdownGrace(
            requestTimeoutSeconds: configuration.requestTimeoutSeconds)
        group.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: group).run()
    }

    /// How long a graceful shutdown may take before what is left is cancelled: the request deadline, plus 5 s.
    static func shutdownGrace(requestTimeoutSeconds: Int) -> Duration {
        .seconds(requestTimeoutSeconds + 5)
    }
}
