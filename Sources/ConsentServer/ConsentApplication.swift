import ConsentCore
import ConsentStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// What the HTTP layer needs from the outside: a database pool (run as a service beside the server), the
/// schema this build expects, the keyring that the master key opens, and the key that signs checkpoints.
public struct ServerDependencies: Sendable {
    public let client: PostgresClient
    public let schema: MigrationRunner
    public let keyring: TenantKeyring
    public let checkpointSigner: CheckpointSigner
    public let subjectRights: SubjectRightsPolicy
    /// The check path's cache, kept in step by `ConsentChangeListener`; nil reads the database for every check.
    public let checkCache: ConsentStateCache?
    /// Live API keys, kept by the same listener as the check cache; on even when the check cache is off, so that
    /// an uncached check costs one round trip, not two.
    public let keyCache: APIKeyCache
    public let metrics: ServiceMetrics
    public let collection: CollectionPolicy
    /// `consentd dev`'s demo shop: `/demo/checkout` opens consent sessions with this tenant's key. Nil in production.
    public var demoShop: DemoShop?
    /// A console session ends after this long without a request (`CONSENTD_CONSOLE_IDLE_MINUTES`).
    public var consoleIdleTimeout: TimeInterval = 30 * 60
    /// Per-key request allowances by scope (`CONSENTD_RATE_LIMIT_*`).
    public var rateLimits: RateLimits = .default
    /// A request not answered in this time gets a 503 (`CONSENTD_REQUEST_TIMEOUT_SECONDS`).
    public var requestTimeout: Duration = .seconds(30)

    public init(
        client: PostgresClient, schema: MigrationRunner, keyring: TenantKeyring, checkpointSigner: CheckpointSigner,
        subjectRights: SubjectRightsPolicy = .default, checkCache: ConsentStateCache? = nil,
        metrics: ServiceMetrics = ServiceMetrics(), collection: CollectionPolicy = .default
    ) {
        self.collection = collection
        self.checkCache = checkCache
        self.keyCache = APIKeyCache(capacity: 10_000)
        self.metrics = metrics
        self.client = client
        self.schema = schema
        self.keyring = keyring
        self.checkpointSigner = checkpointSigner
        self.subjectRights = subjectRights
    }

    public var auditSequencer: AuditSequencer { AuditSequencer(client: client, signer: checkpointSigner) }

    public var subjectExporter: SubjectExporter {
        SubjectExporter(client: client, keyring: keyring, sequencer: auditSequencer, signer: checkpointSigner)
    }
}

public enum ConsentApplication {
    /// Every route of the service. Route → store function → SQL → response, nothing in between.
    public static func router(_ dependencies: ServerDependencies) -> Router<ConsentRequestContext> {
        let router = Router(context: ConsentRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: dependencies.metrics))
        let routeTable = RouteTable()
        router.add(middleware: ErrorShapingMiddleware(routes: routeTable))
        router.add(
            middleware: RequestDeadlineMiddleware(
                timeout: dependencies.requestTimeout, untimedPaths: CheckRoutes.paths))
        HealthRoutes(client: dependencies.client, schema: dependencies.schema).register(on: router)
        MetricsRoutes(
            metrics: dependencies.metrics, cache: dependencies.checkCache, keys: dependencies.keyCache,
            reader: AuditLogReader(client: dependencies.client), client: dependencies.client
        ).register(on: router)

        let keys = APIKeyStore(client: dependencies.client, cache: dependencies.keyCache)
        let v1 = router.group("v1").add(middleware: APIKeyAuthenticator(keys: keys))
            .add(middleware: RateLimitMiddleware(limiter: KeyRateLimiter(limits: dependencies.rateLimits)))
        KeyRoutes(keys: keys).register(on: v1)
        PurposeRoutes(purposes: PurposeStore(client: dependencies.client)).register(on: v1)
        NoticeRoutes(client: dependencies.client, notices: NoticeStore(client: dependencies.client)).register(on: v1)
        ConsentRoutes(
            client: dependencies.client, keyring: dependencies.keyring, suppression: dependencies.subjectRights.suppression,
            cache: dependencies.checkCache, pendingLifetime: dependencies.collection.pendingConsentLifetime
        ).register(on: v1)
        CheckRoutes(
            lookup: ConsentLookup(
                client: dependencies.client, keyring: dependencies.keyring, cache: dependencies.checkCache,
                readDeadline: dependencies.requestTimeout),
            metrics: dependencies.metrics
        ).register(on: v1)
        let audit = AuditRoutes(
            reader: AuditLogReader(client: dependencies.client), sequencer: dependencies.auditSequencer,
            signer: dependencies.checkpointSigner,
            verifier: AuditVerifier(client: dependencies.client, pinnedPublicKey: dependencies.checkpointSigner.publicKey))
        audit.register(on: v1)
        let subjectRights = SubjectRightsRoutes(
            client: dependencies.client, keyring: dependencies.keyring, exporter: dependencies.subjectExporter,
            policy: dependencies.subjectRights, cache: dependencies.checkCache)
        subjectRights.register(on: v1)
        ReportRoutes(reports: ConsentReports(client: dependencies.client)).register(on: v1)
        ConsoleRoutes(
            client: dependencies.client, keyring: dependencies.keyring, keys: keys,
            sessions: ConsoleSessionStore(client: dependencies.client, idleTimeout: dependencies.consoleIdleTimeout),
            subjectRights: subjectRights, exporter: dependencies.subjectExporter,
            reports: ConsentReports(client: dependencies.client), audit: audit, collection: dependencies.collection,
            cache: dependencies.checkCache
        ).register(on: router)

        // Collecting consent where people are: the widget's routes, the self-service page and the WhatsApp
        // webhook take no API key; each authenticates by its own token or signature.
        let settings = TenantSettingsStore(client: dependencies.client, keyring: dependencies.keyring)
        SettingsRoutes(settings: settings).register(on: v1)
        ConsentSessionRoutes(
            client: dependencies.client, keyring: dependencies.keyring, collection: dependencies.collection,
            cache: dependencies.checkCache
        ).register(keyed: v1, open: router)
        SelfServiceRoutes(
            client: dependencies.client, keyring: dependencies.keyring, collection: dependencies.collection,
            cache: dependencies.checkCache
        ).register(keyed: v1, open: router)
        WhatsAppWebhookRoutes(
            settings: settings,
            inbox: WhatsAppInbox(
                client: dependencies.client, keyring: dependencies.keyring,
                pendingLifetime: dependencies.collection.pendingConsentLifetime),
            cache: dependencies.checkCache
        ).register(on: router)
        if let shop = dependencies.demoShop {
            DemoCheckoutRoutes(
                shop: shop, client: dependencies.client, keyring: dependencies.keyring, collection: dependencies.collection
            ).register(on: router)
        }
        routeTable.fill(router.routes.map { ("/" + $0.path.description.drop { $0 == "/" }, $0.method) })
        return router
    }

    /// The server with its database pool, the audit sequencer and the retention job as managed services: the pool
    /// starts before and stops after the others, and SIGTERM/SIGINT let in-flight requests finish. The sequencer
    /// and the retention job each run in one instance at a time (`LeaderLock`).
    public static func make(
        _ dependencies: ServerDependencies, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        var services: [any Service] = [
                dependencies.client,
                LeaderElectedService(client: dependencies.client, lock: .auditSequencer, interval: .seconds(1), logger: logger) {
                    [sequencer = dependencies.auditSequencer] logger in try await sequencer.sequenceAll(logger: logger)
                },
                // Retention and double opt-in expiry, every ten minutes. A confirmation checks the age itself, so an
                // expiry that runs late never lets a stale opt-in be confirmed.
                LeaderElectedService(client: dependencies.client, lock: .retention, interval: .seconds(600), logger: logger) {
                    [
                        purger = RetentionPurger(client: dependencies.client, policy: dependencies.subjectRights.retention),
                        expiry = PendingConsentExpiry(client: dependencies.client, lifetime: dependencies.collection.pendingConsentLifetime)
                    ] logger in
                    let expired = try await expiry.expireAll(logger: logger)
                    if expired > 0 { logger.info("double opt-in: expired unconfirmed consents", metadata: ["count": "\(expired)"]) }
                    let counts = try await purger.purgeAll(logger: logger)
                    if counts.total > 0 {
                        logger.info(
                            "retention: purged",
                            metadata: [
                                "interactions": "\(counts.interactions)", "provenance": "\(counts.provenance)",
                                "idempotency_records": "\(counts.idempotencyRecords)",
                            ])
                    }
                },
        ]
        services.append(ConsentChangeListenerService(
            listener: ConsentChangeListener(client: dependencies.client, cache: dependencies.checkCache, keys: dependencies.keyCache),
            logger: logger))
        return Application(
            router: router(dependencies),
            // Idle keep-alive connections close after 75 s: longer than the 60 s that common load balancers keep
            // them, so the balancer, not the server, closes first and never sends on a connection closing under it.
            server: .http1(configuration: .init(idleTimeout: .seconds(75))),
            configuration: .init(address: .hostname(host, port: port), serverName: "consentd"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}

/// The cache's notification connection as a managed service: it stops listening (and the cache stops answering)
/// on graceful shutdown.
struct ConsentChangeListenerService: Service {
    let listener: ConsentChangeListener
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown { await listener.run(logger: logger) }
    }
}
