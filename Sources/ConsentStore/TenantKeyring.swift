import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The master key and what it unwraps: each tenant's blind-index key (made on first use, stored wrapped in
/// `tenant_keys`, cached unwrapped for the life of the process) and each subject's data key (unwrapped per write,
/// never cached: erasure must not leave a copy in memory).
public final class TenantKeyring: Sendable {
    let master: SymmetricKey
    let blindIndexKeys = Mutex<[UUID: SymmetricKey]>([:])

    public init(masterKey: SecretBytes) {
        precondition(masterKey.bytes.count == 32, "the master key is 32 bytes")
        self.master = SymmetricKey(data: masterKey.bytes)
    }

    public struct KeyUnreadable: Error, CustomStringConvertible {
        public let what: String
        public var description: String {
            "the \(what) does not open under CONSENTD_MASTER_KEY: the key differs from the one that wrapped it"
        }
    }

    /// The tenant's blind-index key, created if the tenant has none yet.
    public func blindIndexKey(tenantId: UUID, client: PostgresClient, logger: Logger) async throws -> SymmetricKey {
        if let key = blindIndexKeys.withLock({ $0[tenantId] }) { return key }
        let key = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await self.tenantKey(.blindIndex, tenantId: tenantId, on: connection, logger: logger)
        }
        blindIndexKeys.withLock { $0[tenantId] = key }
        return key
    }

    public func blindIndex(_ subject: SubjectIdentifier, tenantId: UUID, client: PostgresClient, logger: Logger)
        async throws -> [UInt8]
    {
        BlindIndex.compute(subject, key: try await blindIndexKey(tenantId: tenantId, client: client, logger: logger))
    }

    enum TenantKeyPurpose: String {
        case blindIndex = "blind_index"
    }

    /// Inserts a fresh wrapped key unless one exists, then reads whichever won: concurrent first uses on several
    /// instances agree on one key.
    func tenantKey(_ purpose: TenantKeyPurpose, tenantId: UUID, on connection: PostgresConnection, logger: Logger)
        async throws -> SymmetricKey
    {
        let context = "tenant-key:\(tenantId.lowercased):\(purpose.rawValue)"
        let fresh = FieldCipher.newWrappedKey(master: master, context: context)
        try await connection.query(
            """
            INSERT INTO tenant_keys (tenant_id, purpose, wrapped_key)
            VALUES (\(tenantId), \(purpose.rawValue), \(ByteBuffer(bytes: fresh.wrapped)))
            ON CONFLICT (tenant_id, purpose) DO NOTHING
            """, logger: logger)
        let rows = try await connection.query(
            "SELECT wrapped_key FROM tenant_keys WHERE tenant_id = \(tenantId) AND purpose = \(purpose.rawValue)",
            logger: logger)
        for try await wrapped in rows.decode(ByteBuffer.self) {
            do {
                return try FieldCipher.unwrapKey(Array(wrapped.readableBytesView), master: master, context: context)
            } catch {
                throw KeyUnreadable(what: "tenant's \(purpose.rawValue) key")
            }
        }
        throw KeyUnreadable(what: "tenant's \(purpose.rawValue) key (missing)")
    }

    func newSubjectKey(subjectId: UUID) -> (key: SymmetricKey, wrapped: [UInt8]) {
        FieldCipher.newWrappedKey(master: master, context: Self.subjectKeyContext(subjectId))
    }

    func unwrapSubjectKey(_ wrapped: [UInt8], subjectId: UUID) throws -> SymmetricKey {
        do {
            return try FieldCipher.unwrapKey(wrapped, master: master, context: Self.subjectKeyContext(subjectId))
        } catch {
            throw KeyUnreadable(what: "subject's data key")
        }
    }

    static func subjectKeyContext(_ subjectId: UUID) -> String { "subject-key:\(subjectId.lowercased)" }
}
