import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// The store's read models and background jobs over the same pool, so that the HTTP layer reaches the database
/// only through the store and never holds a driver type.
extension ConsentDatabase {
    public var notices: NoticeStore { NoticeStore(client: client) }
    public var purposes: PurposeStore { PurposeStore(database: self) }
    public var templates: TemplateStore { TemplateStore(database: self) }
    public func templateResolver(readDeadline: Duration) -> TemplateResolver {
        TemplateResolver(client: client, catalogue: catalogueCache, readDeadline: readDeadline)
    }
    public var reports: ConsentReports { ConsentReports(client: client) }
    public var settings: TenantSettingsStore { TenantSettingsStore(client: client, keyring: keyring) }
    public var consentSessions: ConsentSessionStore { ConsentSessionStore(database: self) }
    public var selfService: SelfServiceStore { SelfServiceStore(database: self) }
    public var auditLog: AuditLogReader { AuditLogReader(client: client) }
    public var auditVerifications: AuditVerifications { AuditVerifications(client: client) }

    /// API keys, authenticated through this instance's key cache.
    public var apiKeys: APIKeyStore { APIKeyStore(client: client, cache: keyCache) }

    /// `apiKeys` for authenticating requests: a database read behind it ends within `readDeadline`.
    public func apiKeys(readDeadline: Duration) -> APIKeyStore {
        APIKeyStore(client: client, cache: keyCache, readDeadline: readDeadline)
    }

    public func consoleSessions(idleTimeout: TimeInterval) -> ConsoleSessionStore {
        ConsoleSessionStore(client: client, idleTimeout: idleTimeout)
    }

    public func whatsAppInbox(pendingLifetime: TimeInterval, replayWindow: TimeInterval) -> WhatsAppInbox {
        WhatsAppInbox(database: self, pendingLifetime: pendingLifetime, replayWindow: replayWindow)
    }

    public func auditSequencer(signer: CheckpointSigner) -> AuditSequencer {
        AuditSequencer(client: client, signer: signer)
    }

    public func auditVerifier(trustedKeys: [[UInt8]]) -> AuditVerifier {
        AuditVerifier(client: client, trustedKeys: trustedKeys)
    }

    public func subjectExporter(signer: CheckpointSigner) -> SubjectExporter {
        SubjectExporter(client: client, keyring: keyring, sequencer: auditSequencer(signer: signer), signer: signer)
    }

    public func consentLookup(readDeadline: Duration) -> ConsentLookup {
        ConsentLookup(
            client: client, keyring: keyring, cache: checkCache, catalogue: catalogueCache, readDeadline: readDeadline)
    }

    public func retentionPurger(policy: RetentionPolicy) -> RetentionPurger {
        RetentionPurger(client: client, policy: policy)
    }

    public func pendingConsentExpiry(lifetime: TimeInterval) -> PendingConsentExpiry {
        PendingConsentExpiry(client: client, lifetime: lifetime)
    }

    /// The notification connection that keeps this instance's caches in step with every instance's writes.
    public var changeListener: ConsentChangeListener {
        ConsentChangeListener(
            connector: connector, cache: checkCache, keys: keyCache, catalogue: catalogueCache)
    }

    public func leaderElected(
        _ lock: LeaderLock, interval: Duration, logger: Logger, pass: @escaping @Sendable (Logger) async throws -> Void
    ) -> LeaderElectedService {
        LeaderElectedService(connector: connector, lock: lock, interval: interval, logger: logger, pass: pass)
    }

    /// Whether the database answers and holds exactly the schema `schema` describes.
    public func schemaState(_ schema: MigrationRunner, logger: Logger) async throws -> SchemaState {
        try await schema.state(client: client, logger: logger)
    }

    public func poolUsage(logger: Logger) async throws -> PoolUsage { try await PoolUsage.read(client, logger: logger) }
}

extension ConsentDatabase {
    /// Bulk imports: receiving files and reading what became of them (`ImportWorker` records them).
    public func imports(arrivals: ImportArrivals) -> ImportStore { ImportStore(database: self, arrivals: arrivals) }
}
