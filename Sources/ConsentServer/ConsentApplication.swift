import ConsentCore
import ConsentStore
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// What the HTTP layer needs from the outside: the store's database (its pool runs as a service beside the
/// server), the schema this build expects, and the key that signs checkpoints.
public struct ServerDependencies: Sendable {
    public let database: ConsentDatabase
    public let schema: MigrationRunner
    public let checkpointSigner: CheckpointSigner
    public let subjectRights: SubjectRightsPolicy
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
    /// The dated pricing rules (built in, plus `CONSENTD_PRICING_RULES`) and the `issue_resolution` lookback.
    public var sendPolicy: SendPolicy = .standard
    /// Where `/metrics` is served, on a listener of its own; nil serves it nowhere.
    public var metricsAddress: ListenAddress?
    /// Told the port the metrics listener got (it may have asked for any free one).
    public var onMetricsRunning: @Sendable (Int) async -> Void = { _ in }
    /// The time checks answer at. Always the wall clock in the service; tests of the dated rules set it to the
    /// edges of the platform's pricing periods, which no `sendAt` (now to seven days ahead) can reach.
    public var checkClock: @Sendable () -> Date = { Date() }
    /// Public keys that signed checkpoints before the current one (`CONSENTD_RETIRED_SIGNING_KEYS`).
    public var retiredSigningKeys: [[UInt8]] = []
    /// Where change webhooks may be sent (`CONSENTD_WEBHOOK_ALLOW_LOOPBACK`).
    public var webhookTargets = WebhookTargetPolicy()
    /// When failed webhook deliveries are tried again; tests shorten it.
    public var webhookRetries: WebhookRetrySchedule = .standard
    /// A pending request is announced (`request.due_soon`) this many days before its deadline.
    public var requestDueSoonDays = 7
    /// Wakes this instance's import worker when an upload is in (`ImportWorker`).
    public let importArrivals = ImportArrivals()

    public init(
        database: ConsentDatabase, schema: MigrationRunner, checkpointSigner: CheckpointSigner,
        subjectRights: SubjectRightsPolicy = .default, metrics: ServiceMetrics = ServiceMetrics(),
        collection: CollectionPolicy = .default
    ) {
        self.database = database
        self.collection = collection
        self.metrics = metrics
        self.schema = schema
        self.checkpointSigner = checkpointSigner
        self.subjectRights = subjectRights
    }

    var ledger: ConsentLedger {
        ConsentLedger(
            keyring: database.keyring, suppression: subjectRights.suppression,
            pendingLifetime: collection.pendingConsentLifetime)
    }

    var imports: ImportStore { database.imports(arrivals: importArrivals) }

    var webhookEndpoints: WebhookEndpointStore { database.webhookEndpoints(policy: webhookTargets) }

    var subjectExporter: SubjectExporter { database.subjectExporter(signer: checkpointSigner) }

    var subjectRightsDesk: SubjectRightsDesk {
        SubjectRightsDesk(keyring: database.keyring, exporter: subjectExporter, suppression: subjectRights.suppression)
    }
}

public enum ConsentApplication {
    /// Every route of the service. Route → store function → SQL → response, nothing in between. Throws when the
    /// HTML templates are missing or do not parse, so a broken deployment stops here and not at a request.
    public static func router(_ dependencies: ServerDependencies) async throws -> Router<ConsentRequestContext> {
        try await router(dependencies, bodyReads: BodyReadWatch())
    }

    /// `bodyReads` sweeps only while its `BodyReadWatchService` runs (`make` runs it beside the server).
    static func router(_ dependencies: ServerDependencies, bodyReads: BodyReadWatch) async throws
        -> Router<ConsentRequestContext>
    {
        let templates = try await PageTemplates.load()
        let router = Router(context: ConsentRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: dependencies.metrics))
        let routeTable = RouteTable()
        router.add(middleware: ErrorShapingMiddleware(routes: routeTable))
        router.add(middleware: BodyBufferingMiddleware(watch: bodyReads, timeout: dependencies.requestTimeout))
        router.add(
            middleware: RequestDeadlineMiddleware(
                timeout: dependencies.requestTimeout, untimedPaths: CheckRoutes.paths.union(ImportRoutes.streamedPaths))
        )
        let database = dependencies.database
        HealthRoutes(database: database, schema: dependencies.schema).register(on: router)

        let keys = database.apiKeys(readDeadline: dependencies.requestTimeout)
        let v1 = router.group("v1")
            .add(
                middleware: APIKeyAuthenticator(
                    keys: keys,
                    failures: FailedAuthenticationLimiter(limit: dependencies.rateLimits.failedAuthentication),
                    trustForwardedFor: dependencies.collection.trustForwardedFor)
            )
            .add(middleware: RateLimitMiddleware(limiter: KeyRateLimiter(limits: dependencies.rateLimits)))
        KeyRoutes(database: database).register(on: v1)
        PurposeRoutes(purposes: database.purposes).register(on: v1)
        MessageTemplateRoutes(templates: database.templates, linter: try TemplateLinter.shared.get()).register(on: v1)
        NoticeRoutes(database: database).register(on: v1)
        ConsentRoutes(database: database, ledger: dependencies.ledger).register(on: v1)
        ObjectionRoutes(database: database, ledger: dependencies.ledger).register(on: v1)
        OptOutReviewRoutes(reviews: database.optOutReviews, database: database).register(on: v1)
        CheckRoutes(
            lookup: database.consentLookup(readDeadline: dependencies.requestTimeout),
            templates: database.templateResolver(readDeadline: dependencies.requestTimeout),
            metrics: dependencies.metrics,
            policy: dependencies.sendPolicy, clock: dependencies.checkClock
        ).register(on: v1)
        let audit = AuditRoutes(
            reader: database.auditLog, sequencer: database.auditSequencer(signer: dependencies.checkpointSigner),
            signer: dependencies.checkpointSigner,
            verifier: database.auditVerifier(
                trustedKeys: [dependencies.checkpointSigner.publicKey] + dependencies.retiredSigningKeys),
            verifications: database.auditVerifications, templates: templates)
        audit.register(on: v1)
        let subjectRights = SubjectRightsRoutes(
            database: database, desk: dependencies.subjectRightsDesk, exporter: dependencies.subjectExporter)
        subjectRights.register(on: v1)
        ReportRoutes(reports: database.reports).register(on: v1)
        WebhookRoutes(endpoints: dependencies.webhookEndpoints).register(on: v1)
        ImportRoutes(imports: dependencies.imports, bodyReads: bodyReads, readTimeout: dependencies.requestTimeout)
            .register(on: v1)
        ConsoleRoutes(
            database: database, ledger: dependencies.ledger, keys: keys,
            sessions: database.consoleSessions(idleTimeout: dependencies.consoleIdleTimeout),
            subjectRights: subjectRights, audit: audit, collection: dependencies.collection, templates: templates,
            imports: dependencies.imports, webhooks: dependencies.webhookEndpoints, bodyReads: bodyReads,
            readTimeout: dependencies.requestTimeout
        ).register(on: router)

        // Collecting consent where people are: the widget's routes, the self-service page and the WhatsApp
        // webhook take no API key; each authenticates by its own token or signature.
        SettingsRoutes(settings: database.settings).register(on: v1)
        ConsentSessionRoutes(database: database, collection: dependencies.collection).register(keyed: v1, open: router)
        SelfServiceRoutes(database: database, collection: dependencies.collection, templates: templates)
            .register(keyed: v1, open: router)
        WhatsAppWebhookRoutes(
            settings: database.settings,
            inbox: database.whatsAppInbox(
                pendingLifetime: dependencies.collection.pendingConsentLifetime,
                replayWindow: Double(dependencies.subjectRights.retention.idempotencyDays) * 86_400)
        ).register(on: router)
        if let shop = dependencies.demoShop {
            DemoCheckoutRoutes(
                shop: shop, database: database, collection: dependencies.collection, templates: templates
            )
            .register(on: router)
        }
        routeTable.fill(router.routes.map { ("/" + $0.path.description.drop { $0 == "/" }, $0.method) })
        return router
    }

    /// `/metrics` alone, for the metrics listener (`ServerDependencies.metricsAddress`).
    public static func metricsRouter(_ dependencies: ServerDependencies) -> Router<ConsentRequestContext> {
        let router = Router(context: ConsentRequestContext.self)
        let database = dependencies.database
        MetricsRoutes(metrics: dependencies.metrics, keys: database.keyCache, database: database).register(
            on: router)
        return router
    }

    /// The server with its database pool, the audit sequencer and the retention job as managed services: the pool
    /// starts before and stops after the others, and SIGTERM/SIGINT let in-flight requests finish. The sequencer
    /// and the retention job each run in one instance at a time (`LeaderLock`).
    public static func make(
        _ dependencies: ServerDependencies, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws -> some ApplicationProtocol {
        let database = dependencies.database
        let bodyReads = BodyReadWatch()
        var services: [any Service] = [
            database,
            BodyReadWatchService(watch: bodyReads),
            database.leaderElected(.auditSequencer, interval: .seconds(1), logger: logger) {
                [sequencer = database.auditSequencer(signer: dependencies.checkpointSigner)] logger in
                try await sequencer.sequenceAll(logger: logger)
            },
            // Retention and double opt-in expiry, every ten minutes. A confirmation checks the age itself, so an
            // expiry that runs late never lets a stale opt-in be confirmed.
            database.leaderElected(.retention, interval: .seconds(600), logger: logger) {
                [
                    purger = database.retentionPurger(policy: dependencies.subjectRights.retention),
                    expiry = database.pendingConsentExpiry(lifetime: dependencies.collection.pendingConsentLifetime)
                ] logger in
                let expired = try await expiry.expireAll(logger: logger)
                if expired > 0 {
                    logger.info("double opt-in: expired unconfirmed consents", metadata: ["count": "\(expired)"])
                }
                let announced = try await database.announceRequestsDueSoon(
                    withinDays: dependencies.requestDueSoonDays, logger: logger)
                if announced > 0 {
                    logger.info("requests: announced deadlines near", metadata: ["count": "\(announced)"])
                }
                let pruned = try await database.pruneWebhookDeliveries(olderThanDays: 30, logger: logger)
                if pruned > 0 {
                    logger.info("webhooks: pruned settled deliveries", metadata: ["count": "\(pruned)"])
                }
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
            ConsentChangeListenerService(
                listener: database.changeListener, logger: logger),
            ImportWorker(
                database: database, ledger: dependencies.ledger, arrivals: dependencies.importArrivals, logger: logger),
            WebhookDeliveryService(
                database: database, policy: dependencies.webhookTargets, schedule: dependencies.webhookRetries,
                logger: logger),
        ]
        if let address = dependencies.metricsAddress {
            services.append(
                Application(
                    router: metricsRouter(dependencies),
                    configuration: .init(
                        address: .hostname(address.host, port: address.port), serverName: "consentd-metrics"),
                    onServerRunning: { [onRunning = dependencies.onMetricsRunning] channel in
                        await onRunning(channel.localAddress?.port ?? address.port)
                    },
                    logger: logger))
        }
        return Application(
            router: try await router(dependencies, bodyReads: bodyReads),
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
