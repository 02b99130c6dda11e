import ConsentCore
import Foundation
import Logging
import PostgresNIO

/// A signed-in console session: who (the dpo key's identity) and the CSRF token its forms carry.
public struct ConsoleSession: Sendable, Equatable {
    public let id: UUID
    public let caller: CallerIdentity
    public let csrfToken: String
}

/// Console sign-ins: a `dpo` key is exchanged once for a session cookie, so the key never travels again and never
/// appears in a page or URL. Sessions live in the database (any instance can serve them) and end on sign-out,
/// after `idleTimeout` without a request, after `maximumAge`, or as soon as their key is revoked.
public struct ConsoleSessionStore: Sendable {
    let client: PostgresClient
    let idleTimeout: TimeInterval
    let maximumAge: TimeInterval

    public init(client: PostgresClient, idleTimeout: TimeInterval, maximumAge: TimeInterval = 12 * 3600) {
        self.client = client
        self.idleTimeout = idleTimeout
        self.maximumAge = maximumAge
    }

    public func start(for caller: CallerIdentity, logger: Logger) async throws -> (TenantToken, ConsoleSession) {
        let token = TenantToken.generate(tenantId: caller.tenantId)
        let csrf = Base64URL.encode(TenantToken.randomBytes(32))
        let id = UUID()
        try await client.withTenantTransaction(caller.tenantId, logger: logger) { connection in
            try await connection.closeSafeQuery(
                """
                INSERT INTO console_sessions (id, tenant_id, token_sha256, key_id, csrf_token)
                VALUES (\(id), \(caller.tenantId), \(ByteBuffer(bytes: token.sha256)), \(caller.keyId), \(csrf))
                """, logger: logger)
            try await AuditTrail.append(
                [AuditEvent(action: .consoleSignedIn, actor: caller.actor, data: ["sessionId": .id(id)])],
                tenantId: caller.tenantId, on: connection, logger: logger)
        }
        return (token, ConsoleSession(id: id, caller: caller, csrfToken: csrf))
    }

    /// The live session for a cookie, its idle clock restarted; nil for anything else.
    public func resume(_ token: TenantToken, logger: Logger) async throws -> ConsoleSession? {
        try await client.withTenantTransaction(token.tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                UPDATE console_sessions s SET last_seen_at = now()
                FROM api_keys k
                WHERE s.token_sha256 = \(ByteBuffer(bytes: token.sha256)) AND k.id = s.key_id
                  AND s.ended_at IS NULL AND k.revoked_at IS NULL AND 'dpo' = ANY (k.scopes)
                  AND s.last_seen_at > now() - make_interval(secs => \(idleTimeout))
                  AND s.created_at > now() - make_interval(secs => \(maximumAge))
                RETURNING s.id, s.key_id, s.csrf_token, k.scopes
                """, logger: logger)
            guard
                let (id, keyId, csrf, scopes) = try await rows.decode((UUID, UUID, String, [String]).self).array().first
            else { return nil }
            let caller = CallerIdentity(
                keyId: keyId, tenantId: token.tenantId, scopes: Set(scopes.compactMap(Scope.init(rawValue:))))
            return ConsoleSession(id: id, caller: caller, csrfToken: csrf)
        }
    }

    public func end(_ session: ConsoleSession, logger: Logger) async throws {
        try await client.withTenantTransaction(session.caller.tenantId, logger: logger) { connection in
            try await connection.closeSafeQuery(
                "UPDATE console_sessions SET ended_at = now() WHERE id = \(session.id) AND ended_at IS NULL",
                logger: logger)
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .consoleSignedOut, actor: session.caller.actor, data: ["sessionId": .id(session.id)])
                ],
                tenantId: session.caller.tenantId, on: connection, logger: logger)
        }
    }
}

/// Runs of the full audit-log verification, so the console can say when the log last verified.
public struct AuditVerificationRecord: Sendable, Equatable {
    public let verifiedAt: Date
    public let ok: Bool
    public let treeSize: Int64
    public let problem: String?
}

/// The outcomes of full verifications run from the console or the API, for the console's overview.
public struct AuditVerifications: Sendable {
    let client: PostgresClient

    public init(client: PostgresClient) {
        self.client = client
    }

    public func record(
        ok: Bool, treeSize: Int64, problem: String?, caller: CallerIdentity, logger: Logger
    ) async throws {
        try await client.withTenantTransaction(caller.tenantId, logger: logger) { connection in
            _ = try await connection.closeSafeQuery(
                """
                INSERT INTO audit_verifications (tenant_id, ok, tree_size, problem, verified_by)
                VALUES (\(caller.tenantId), \(ok), \(treeSize), \(problem.map { String($0.prefix(2000)) }), \(caller.keyId))
                """, logger: logger)
        }
    }

    /// The latest run, and the latest successful one.
    public func latest(tenantId: UUID, logger: Logger) async throws
        -> (last: AuditVerificationRecord?, lastSuccess: AuditVerificationRecord?)
    {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            func one(_ onlyOK: Bool) async throws -> AuditVerificationRecord? {
                let rows = try await connection.closeSafeQuery(
                    """
                    SELECT verified_at, ok, tree_size, problem FROM audit_verifications
                    WHERE (NOT \(onlyOK) OR ok) ORDER BY verified_at DESC LIMIT 1
                    """, logger: logger)
                return try await rows.decode((Date, Bool, Int64, String?).self).array().first.map {
                    AuditVerificationRecord(verifiedAt: $0.0, ok: $0.1, treeSize: $0.2, problem: $0.3)
                }
            }
            return (try await one(false), try await one(true))
        }
    }
}
