import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A response as first sent, kept so that a retry gets the same bytes.
public struct StoredResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    /// Whether a retry may be answered with these bytes. A response that carries a bearer token (a consent
    /// session's) is sent once and never stored: a retry of it is refused (`IdempotencyError.replayWithheld`).
    public let replayable: Bool

    public init(status: Int, body: [UInt8], replayable: Bool = true) {
        self.status = status
        self.body = body
        self.replayable = replayable
    }
}

/// A write's outcome: the response, and whether it is the replay of an earlier request's.
public struct WriteOutcome: Sendable {
    public let response: StoredResponse
    public let replayed: Bool
}

/// The client's `Idempotency-Key` for one write, with what it asked for. The stored request hash is keyed by a
/// key of the tenant's and takes the blind indexes of the people the request names, never their identifiers, so
/// a hash cannot be matched against guessed phone numbers (issue 21, finding 5); the record is tied to those
/// people by their blind indexes and deleted when they are erased.
public struct IdempotencyClaim: Sendable {
    public let key: String
    public let operation: String
    /// The request as canonical JSON with the fields that name people left out (the server's `decodeWrite`).
    let request: [UInt8]
    /// The people the request names.
    let subjects: [SubjectIdentifier]
    /// An erasure's own record is not tied to the person it erased, so that its retry is answered as the first
    /// was; it keeps only the keyed hash, as the suppression list does, and ages out with the other records.
    let outlivesSubjects: Bool

    public init(
        key: String, operation: String, request: [UInt8], subjects: [SubjectIdentifier], outlivesSubjects: Bool = false
    ) {
        self.key = key
        self.operation = operation
        self.request = request
        self.subjects = subjects
        self.outlivesSubjects = outlivesSubjects
    }

    /// 1 to 255 visible ASCII characters, as header values allow.
    public static func isValidKey(_ key: String) -> Bool {
        (1...255).contains(key.utf8.count) && key.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// HMAC-SHA256 under the tenant's idempotency key over the operation, the request without its people, and
    /// the people's blind indexes, each part length-prefixed so that no two requests run together alike.
    func requestHash(key: SymmetricKey, blindIndexes: [[UInt8]]) -> [UInt8] {
        var mac = HMAC<SHA256>(key: key)
        for part in [Array(operation.utf8), request] + blindIndexes {
            withUnsafeBytes(of: UInt64(part.count).bigEndian) { mac.update(data: Array($0)) }
            mac.update(data: part)
        }
        return Array(mac.finalize())
    }
}

public enum IdempotencyError: Error, Equatable {
    /// The key was used before for another request body or another operation.
    case keyReused
    /// The key's first response carried a bearer token, which is never stored for a replay.
    case replayWithheld
}

/// Runs a tenant's write in one transaction together with its idempotency record. The claim is inserted first:
/// a concurrent retry blocks on it until the first commits, then reads its response; a failed first attempt
/// rolls the claim back with everything else.
struct TenantWriter: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring

    func write<Value>(
        tenantId: UUID, idempotency: IdempotencyClaim?, logger: Logger,
        render: (Value) throws -> StoredResponse,
        _ body: (PostgresConnection) async throws -> Value
    ) async throws -> WriteOutcome {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            guard let claim = idempotency else {
                return WriteOutcome(response: try render(try await body(connection)), replayed: false)
            }
            let blindIndexes = BlindIndex.compute(
                claim.subjects,
                key: try await keyring.tenantKey(.blindIndex, tenantId: tenantId, on: connection, logger: logger))
            let hash = claim.requestHash(
                key: try await keyring.tenantKey(.idempotency, tenantId: tenantId, on: connection, logger: logger),
                blindIndexes: blindIndexes)
            if let earlier = try await Self.claim(claim, hash: hash, tenantId: tenantId, on: connection, logger: logger)
            {
                return WriteOutcome(response: earlier, replayed: true)
            }
            let response = try render(try await body(connection))
            let tied = claim.outlivesSubjects ? [] : blindIndexes.map { ByteBuffer(bytes: $0) }
            try await connection.closeSafeQuery(
                """
                UPDATE idempotency_keys
                SET status = \(response.status),
                    response = \(ByteBuffer(bytes: response.replayable ? response.body : [])),
                    replay_withheld = \(!response.replayable), subject_refs = \(tied)
                WHERE tenant_id = \(tenantId) AND key = \(claim.key)
                """, logger: logger)
            return WriteOutcome(response: response, replayed: false)
        }
    }

    /// Nil when this request now owns the key; the earlier response when the key was used for the same request.
    private static func claim(
        _ claim: IdempotencyClaim, hash: [UInt8], tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> StoredResponse? {
        let inserted = try await connection.closeSafeQuery(
            """
            INSERT INTO idempotency_keys (tenant_id, key, operation, request_hash)
            VALUES (\(tenantId), \(claim.key), \(claim.operation), \(ByteBuffer(bytes: hash)))
            ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key
            """, logger: logger
        ).collect()
        if !inserted.isEmpty { return nil }
        let rows = try await connection.closeSafeQuery(
            """
            SELECT operation, request_hash, status, response, replay_withheld FROM idempotency_keys
            WHERE tenant_id = \(tenantId) AND key = \(claim.key)
            """, logger: logger)
        for try await (operation, stored, status, response, withheld) in rows.decode(
            (String, ByteBuffer, Int?, ByteBuffer?, Bool).self)
        {
            guard operation == claim.operation, Array(stored.readableBytesView) == hash, let status, let response
            else { throw IdempotencyError.keyReused }
            if withheld { throw IdempotencyError.replayWithheld }
            return StoredResponse(status: status, body: Array(response.readableBytesView))
        }
        // The row vanished between the two statements (a purge, an erasure): treat the request as new.
        return nil
    }
}

extension WriteOutcome {
    public static func fresh(_ response: StoredResponse) -> WriteOutcome {
        WriteOutcome(response: response, replayed: false)
    }
}
