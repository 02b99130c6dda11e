import ConsentCore
import Foundation
import Logging
import PostgresNIO

public struct APIKeyRecord: Sendable, Equatable {
    public let id: UUID
    public let tenantId: UUID
    public let displayPrefix: String
    public let label: String
    public let scopes: Set<Scope>
    public let createdAt: Date
    public let revokedAt: Date?
}

/// What a revocation did: whether a live key was revoked.
public struct KeyRevocationOutcome: Sendable, Equatable {
    public let keyId: UUID
    public let revoked: Bool
}

/// A freshly created key: the token is in memory only here, once, for the caller to hand over.
public struct IssuedAPIKey: Sendable {
    public let record: APIKeyRecord
    public let token: APIKeyToken
}

/// API keys: created and revoked within a tenant, resolved from a presented token on every request.
public struct APIKeyStore: Sendable {
    let client: PostgresClient
    let cache: APIKeyCache?
    /// Bounds the database read behind an authentication on its own: the check routes run under no request
    /// deadline, and with the caches off (a quiet change feed) their key lookup waited as long as the network
    /// did (55 s in a 60 s black hole; `scripts/quiet_faults.py`).
    let readDeadline: Duration?

    public init(client: PostgresClient, cache: APIKeyCache? = nil, readDeadline: Duration? = nil) {
        self.client = client
        self.cache = cache
        self.readDeadline = readDeadline
    }

    /// `actor` is recorded in the audit log: the operator for `consentd keys create`, else the admin key's id.
    public func create(
        tenantId: UUID, scopes: Set<Scope>, label: String, actor: String = AuditEvent.operatorActor, logger: Logger
    ) async throws -> IssuedAPIKey {
        precondition(!scopes.isEmpty, "a key needs at least one scope")
        let token = APIKeyToken.generate()
        let scopeNames = scopes.sorted().map(\.rawValue)
        let record = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                INSERT INTO api_keys (tenant_id, key_hash, display_prefix, label, scopes)
                VALUES (\(tenantId), \(ByteBuffer(bytes: token.storedHash)), \(token.displayPrefix), \(label), \(scopeNames))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            let records = try await Self.records(rows)
            try await AuditTrail.append(
                records.map {
                    AuditEvent(
                        action: .keyCreated, actor: actor,
                        data: [
                            "keyId": .id($0.id), "scopes": .strings(scopeNames), "prefix": .string($0.displayPrefix),
                        ])
                }, tenantId: tenantId, on: connection, logger: logger)
            guard let record = records.first else { throw APIKeyStoreError.notCreated }
            return record
        }
        return IssuedAPIKey(record: record, token: token)
    }

    public func list(tenantId: UUID, logger: Logger) async throws -> [APIKeyRecord] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.records(
                connection.closeSafeQuery(
                    "SELECT \(unescaped: Self.columns) FROM api_keys ORDER BY created_at, id", logger: logger))
        }
    }

    /// Revokes at once: the next request presenting the key is refused, on this instance by `ConsentDatabase`'s
    /// commit, on the others by the NOTIFY the revocation commits. `revoked` is false when no such live key exists.
    public func revocation(tenantId: UUID, keyId: UUID, actor: String) -> UnitOfWork<KeyRevocationOutcome> {
        UnitOfWork(
            tenantId: tenantId, changes: { _ in [] }, revokedKeys: { $0.revoked ? [$0.keyId] : [] },
            body: { connection, logger in
                KeyRevocationOutcome(
                    keyId: keyId,
                    revoked: try await Self.revoke(
                        keyId: keyId, tenantId: tenantId, actor: actor, on: connection, logger: logger))
            })
    }

    /// The operator's revocation (`consentd keys revoke`), from a process without caches: the serving instances
    /// hear of it by NOTIFY. False when no such live key exists.
    public func revoke(tenantId: UUID, keyId: UUID, actor: String = AuditEvent.operatorActor, logger: Logger)
        async throws -> Bool
    {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.revoke(keyId: keyId, tenantId: tenantId, actor: actor, on: connection, logger: logger)
        }
    }

    private static func revoke(
        keyId: UUID, tenantId: UUID, actor: String, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        let revoked =
            try await connection.closeSafeQuery(
                """
                UPDATE api_keys SET revoked_at = now()
                WHERE id = \(keyId) AND revoked_at IS NULL RETURNING id
                """, logger: logger
            ).collect().isEmpty == false
        if revoked {
            try await connection.closeSafeQuery(
                "SELECT pg_notify(\(ConsentChange.channel), \(KeyRevocation(keyId: keyId).payload))", logger: logger)
            try await AuditTrail.append(
                [AuditEvent(action: .keyRevoked, actor: actor, data: ["keyId": .id(keyId)])],
                tenantId: tenantId, on: connection, logger: logger)
        }
        return revoked
    }

    /// The identity behind a presented token, or nil when it is unknown or revoked: from the cache, else one round
    /// trip. A hash the database did not know is answered from memory for a few seconds (`APIKeyCache`).
    /// `beforeRead` runs before a database read and may refuse it by throwing (the per-address limit).
    public func authenticate(
        _ token: APIKeyToken, logger: Logger, beforeRead: () throws -> Void = {}
    ) async throws -> CallerIdentity? {
        let storedHash = token.storedHash
        guard let cache else {
            try beforeRead()
            return try await read(storedHash, logger: logger)
        }
        let (cached, generation) = cache.lookup(storedHash)
        if let cached { return cached }
        if cache.isKnownUnknown(storedHash) { return nil }
        try beforeRead()
        let identity = try await read(storedHash, logger: logger)
        if let identity {
            cache.fill(storedHash, identity: identity, generation: generation)
        } else {
            cache.rememberUnknown(storedHash)
        }
        return identity
    }

    func read(_ storedHash: [UInt8], logger: Logger) async throws -> CallerIdentity? {
        guard let readDeadline else { return try await Self.read(storedHash, client: client, logger: logger) }
        return try await withDeadline(readDeadline, grace: .seconds(1)) { [client] in
            try await Self.read(storedHash, client: client, logger: logger)
        }
    }

    static func read(_ storedHash: [UInt8], client: PostgresClient, logger: Logger) async throws -> CallerIdentity? {
        try await client.withRequestConnection { connection in
            let rows = try await connection.execute(
                AuthenticateStatement(keyHash: ByteBuffer(bytes: storedHash)), logger: logger)
            var identity: CallerIdentity?
            for try await (keyId, tenantId, scopeNames) in rows where identity == nil {
                let scopes = Set(scopeNames.compactMap(Scope.init(rawValue:)))
                identity = CallerIdentity(keyId: keyId, tenantId: tenantId, scopes: scopes)
            }
            return identity
        }
    }

    static let columns = "id, tenant_id, display_prefix, label, scopes, created_at, revoked_at"

    static func records(_ rows: StoreRows) async throws -> [APIKeyRecord] {
        var records: [APIKeyRecord] = []
        for try await (id, tenantId, prefix, label, scopes, createdAt, revokedAt) in rows.decode(
            (UUID, UUID, String, String, [String], Date, Date?).self)
        {
            records.append(
                APIKeyRecord(
                    id: id, tenantId: tenantId, displayPrefix: prefix, label: label,
                    scopes: Set(scopes.compactMap(Scope.init(rawValue:))), createdAt: createdAt, revokedAt: revokedAt))
        }
        return records
    }
}

enum APIKeyStoreError: Error {
    /// INSERT … RETURNING gave no row: only possible if a policy silently filtered it.
    case notCreated
}

/// Every request's first query, prepared once per connection.
struct AuthenticateStatement: PostgresPreparedStatement {
    static let name = "consentd_authenticate"
    static let sql = "SELECT key_id, tenant_id, scopes FROM app_authenticate($1)"
    static let bindingDataTypes: [PostgresDataType] = [.bytea]
    typealias Row = (UUID, UUID, [String])

    let keyHash: ByteBuffer

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(keyHash)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode((UUID, UUID, [String]).self)
    }
}
