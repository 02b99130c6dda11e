import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A response as first sent, kept so that a retry gets the same bytes.
public struct StoredResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// A write's outcome: the response, and whether it is the replay of an earlier request's.
public struct WriteOutcome: Sendable {
    public let response: StoredResponse
    public let replayed: Bool
}

/// The client's `Idempotency-Key` for one write, with a hash of what it asked for.
public struct IdempotencyClaim: Sendable {
    public let key: String
    public let operation: String
    public let requestHash: [UInt8]

    public init(key: String, operation: String, request: some DataProtocol) {
        self.key = key
        self.operation = operation
        var hasher = SHA256()
        hasher.update(data: Array(operation.utf8) + [0])
        hasher.update(data: request)
        self.requestHash = Array(hasher.finalize())
    }

    /// 1 to 255 visible ASCII characters, as header values allow.
    public static func isValidKey(_ key: String) -> Bool {
        (1...255).contains(key.utf8.count) && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }
}

public enum IdempotencyError: Error, Equatable {
    /// The key was used before for another request body or another operation.
    case keyReused
}

/// Runs a tenant's write in one transaction together with its idempotency record. The claim is inserted first:
/// a concurrent retry blocks on it until the first commits, then reads its response; a failed first attempt
/// rolls the claim back with everything else.
public struct TenantWriter: Sendable {
    let client: PostgresClient
    public init(client: PostgresClient) { self.client = client }

    public func write<Value>(
        tenantId: UUID, idempotency: IdempotencyClaim?, logger: Logger,
        render: (Value) throws -> StoredResponse,
        _ body: (PostgresConnection) async throws -> Value
    ) async throws -> WriteOutcome {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            if let claim = idempotency,
                let earlier = try await Self.claim(claim, tenantId: tenantId, on: connection, logger: logger)
            {
                return WriteOutcome(response: earlier, replayed: true)
            }
            let response = try render(try await body(connection))
            if let claim = idempotency {
                try await connection.closeSafeQuery(
                    """
                    UPDATE idempotency_keys SET status = \(response.status), response = \(ByteBuffer(bytes: response.body))
                    WHERE tenant_id = \(tenantId) AND key = \(claim.key)
                    """, logger: logger)
            }
            return WriteOutcome(response: response, replayed: false)
        }
    }

    /// Nil when this request now owns the key; the earlier response when the key was used for the same request.
    static func claim(_ claim: IdempotencyClaim, tenantId: UUID, on connection: PostgresConnection, logger: Logger)
        async throws -> StoredResponse?
    {
        let inserted = try await connection.closeSafeQuery(
            """
            INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash)
            VALUES (\(tenantId), \(claim.key), \(claim.operation), \(ByteBuffer(bytes: claim.requestHash)))
            ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
            """, logger: logger
        ).collect()
        if !inserted.isEmpty { return nil }
        let rows = try await connection.closeSafeQuery(
            """
            SELECT operation, request_hash, status, response FROM idempotency_keys
            WHERE tenant_id = \(tenantId) AND key = \(claim.key)
            """, logger: logger)
        for try await (operation, hash, status, response) in rows.decode((String, ByteBuffer, Int?, ByteBuffer?).self) {
            guard operation == claim.operation, Array(hash.readableBytesView) == claim.requestHash,
                let status, let response
            else { throw IdempotencyError.keyReused }
            return StoredResponse(status: status, body: Array(response.readableBytesView))
        }
        // The row vanished between the two statements (a purge): treat the request as new.
        return nil
    }
}

extension WriteOutcome {
    public static func fresh(_ response: StoredResponse) -> WriteOutcome {
        WriteOutcome(response: response, replayed: false)
    }
}
