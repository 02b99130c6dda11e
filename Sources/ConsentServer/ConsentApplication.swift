import ConsentCore
import ConsentStore
import Hummingbird
import Logging
import PostgresNIO

/// What the HTTP layer needs from the outside: a database pool (run as a service beside the server), the
/// schema this build expects, the keyring that the master key opens, and the key that signs checkpoints.
public struct ServerDependencies: Sendable {
    public let client: PostgresClient
    public let schema: MigrationRunner
    public let keyring: TenantKeyring
    public let checkpointSigner: CheckpointSigner

    public init(client: PostgresClient, schema: MigrationRunner, keyring: TenantKeyring, checkpointSigner: CheckpointSigner) {
        self.client = client
        self.schema = schema
        self.keyring = keyring
        self.checkpointSigner = checkpointSigner
    }

    public var auditSequencer: AuditSequencer { AuditSequencer(client: client, signer: checkpointSigner) }
}

public enum ConsentApplication {
    /// Every route of the service. Route → store function → SQL → response, nothing in between.
    public static func router(_ dependencies: ServerDependencies) -> Router<ConsentRequestContext> {
        let router = Router(context: ConsentRequestContext.self)
        router.add(middleware: ErrorShapingMiddleware())
        HealthRoutes(client: dependencies.client, schema: dependencies.schema).register(on: router)

        let keys = APIKeyStore(client: dependencies.client)
        let v1 = router.group("v1").add(middleware: APIKeyAuthenticator(keys: keys))
        KeyRoutes(keys: keys).register(on: v1)
        PurposeRoutes(purposes: PurposeStore(client: dependencies.client)).register(on: v1)
        NoticeRoutes(client: dependencies.client, notices: NoticeStore(client: dependencies.client)).register(on: v1)
        ConsentRoutes(client: dependencies.client, keyring: dependencies.keyring).register(on: v1)
        CheckRoutes(lookup: ConsentLookup(client: dependencies.client, keyring: dependencies.keyring)).register(on: v1)
        AuditRoutes(
            reader: AuditLogReader(client: dependencies.client), sequencer: dependencies.auditSequencer,
            signer: dependencies.checkpointSigner,
            verifier: AuditVerifier(client: dependencies.client, pinnedPublicKey: dependencies.checkpointSigner.publicKey)
        ).register(on: v1)
        return router
    }

    /// The server with its database pool and the audit sequencer as managed services: the pool starts before and
    /// stops after the others, and SIGTERM/SIGINT let in-flight requests finish.
    public static func make(
        _ dependencies: ServerDependencies, host: String, port: Int, logger: Logger,
        onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(dependencies),
            configuration: .init(address: .hostname(host, port: port), serverName: "consentd"),
            services: [
                dependencies.client,
                AuditSequencerService(client: dependencies.client, sequencer: dependencies.auditSequencer, logger: logger),
            ],
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
