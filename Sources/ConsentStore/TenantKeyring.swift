import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The master keys and what they unwrap: each tenant's blind-index and suppression keys (made on first use, stored
/// wrapped in `tenant_keys`, cached unwrapped for the life of the process) and each subject's data key (unwrapped
/// per use, never cached: erasure must not leave a copy in memory).
///
/// One master wraps (`CONSENTD_MASTER_KEY`); others may only unwrap (`CONSENTD_UNWRAP_MASTER_KEYS`), which is how
/// servers keep working while `consentd keys rotate-master` moves every key from the old master to the new one.
public final class TenantKeyring: Sendable {
    let master: SymmetricKey
    let masterId: [UInt8]
    /// Every master this process may unwrap with, the wrapping one first.
    let unwrapping: [(id: [UInt8], key: SymmetricKey)]
    let tenantKeys = Mutex<[TenantKeyName: SymmetricKey]>([:])

    public init(masterKey: SecretBytes, unwrapOnly: [SecretBytes] = []) {
        precondition(masterKey.bytes.count == 32, "the master key is 32 bytes")
        let master = SymmetricKey(data: masterKey.bytes)
        self.master = master
        self.masterId = MasterKeyID.of(master)
        var keys = [(id: MasterKeyID.of(master), key: master)]
        for extra in unwrapOnly {
            precondition(extra.bytes.count == 32, "a master key is 32 bytes")
            let key = SymmetricKey(data: extra.bytes)
            let id = MasterKeyID.of(key)
            if !keys.contains(where: { $0.id == id }) { keys.append((id, key)) }
        }
        self.unwrapping = keys
    }

    public struct KeyUnreadable: Error, CustomStringConvertible {
        public let what: String
        public var description: String {
            "the \(what) does not open under any configured master key (CONSENTD_MASTER_KEY, CONSENTD_UNWRAP_MASTER_KEYS)"
        }
    }

    /// The hex id of the wrapping master, for operators comparing configurations without seeing keys.
    public var masterKeyId: String { masterId.hexString }

    struct TenantKeyName: Hashable {
        let tenantId: UUID
        let purpose: TenantKeyPurpose
    }

    enum TenantKeyPurpose: String {
        case blindIndex = "blind_index"
        case suppression
        /// Signs self-service links.
        case selfServiceLink = "self_service_link"
        /// Seals the tenant's settings secrets (the WhatsApp app secret).
        case settings
        /// Keys the hashes of idempotent requests (`IdempotencyClaim.requestHash`).
        case idempotency
    }

    /// The tenant's blind-index key, created if the tenant has none yet.
    public func blindIndexKey(tenantId: UUID, client: PostgresClient, logger: Logger) async throws -> SymmetricKey {
        let name = TenantKeyName(tenantId: tenantId, purpose: .blindIndex)
        if let key = tenantKeys.withLock({ $0[name] }) { return key }
        let key = try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await self.tenantKey(.blindIndex, tenantId: tenantId, on: connection, logger: logger)
        }
        return key
    }

    public func blindIndex(_ subject: SubjectIdentifier, tenantId: UUID, client: PostgresClient, logger: Logger)
        async throws -> [UInt8]
    {
        BlindIndex.compute(subject, key: try await blindIndexKey(tenantId: tenantId, client: client, logger: logger))
    }

    /// Loads the tenant's blind-index and suppression keys (made if the tenant has none yet), so that a unit of
    /// work that runs as one statement computes its keyed hashes without a statement of its own: outside a
    /// transaction, no statement but the one that names its tenant may read the tenant's rows.
    func load(tenantId: UUID, client: PostgresClient, logger: Logger) async throws {
        let needed: [TenantKeyPurpose] = [.blindIndex, .suppression]
        let missing = tenantKeys.withLock { keys in
            needed.contains { keys[TenantKeyName(tenantId: tenantId, purpose: $0)] == nil }
        }
        guard missing else { return }
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            for purpose in needed {
                _ = try await self.tenantKey(purpose, tenantId: tenantId, on: connection, logger: logger)
            }
        }
    }

    /// The subject's blind index inside a write's transaction (the tenant's key is cached after its first use).
    func blindIndex(_ subject: SubjectIdentifier, on connection: PostgresConnection, tenantId: UUID, logger: Logger)
        async throws -> [UInt8]
    {
        BlindIndex.compute(
            subject, key: try await tenantKey(.blindIndex, tenantId: tenantId, on: connection, logger: logger))
    }

    /// A key `load` has put in memory, for work that has no connection to read one with (a group commit's items);
    /// nil if it is not there.
    func loadedKey(_ purpose: TenantKeyPurpose, tenantId: UUID) -> SymmetricKey? {
        tenantKeys.withLock { $0[TenantKeyName(tenantId: tenantId, purpose: purpose)] }
    }

    /// The person's suppression-list hash, under the tenant's suppression key.
    func suppressionHash(
        _ subject: SubjectIdentifier, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    )
        async throws -> [UInt8]
    {
        SuppressionHash.compute(
            subject, key: try await tenantKey(.suppression, tenantId: tenantId, on: connection, logger: logger))
    }

    /// Inserts a fresh wrapped key unless one exists, then reads whichever won: concurrent first uses on several
    /// instances agree on one key.
    func tenantKey(_ purpose: TenantKeyPurpose, tenantId: UUID, on connection: PostgresConnection, logger: Logger)
        async throws -> SymmetricKey
    {
        let name = TenantKeyName(tenantId: tenantId, purpose: purpose)
        if let key = tenantKeys.withLock({ $0[name] }) { return key }
        let context = Self.tenantKeyContext(tenantId, purpose.rawValue)
        let fresh = FieldCipher.newWrappedKey(master: master, context: context)
        try await connection.closeSafeQuery(
            """
            INSERT INTO tenant_keys (tenant_id, purpose, wrapped_key, master_key_id)
            VALUES (\(tenantId), \(purpose.rawValue), \(ByteBuffer(bytes: fresh.wrapped)), \(ByteBuffer(bytes: masterId)))
            ON CONFLICT (tenant_id, purpose) DO NOTHING
            """, logger: logger)
        guard let key = try await existingTenantKey(purpose, tenantId: tenantId, on: connection, logger: logger) else {
            throw KeyUnreadable(what: "tenant's \(purpose.rawValue) key (missing)")
        }
        return key
    }

    /// The tenant's key if it has one; never writes. For the routes that take no API key (a self-service link):
    /// what they are given names a tenant, which may not exist, and an open route must not create anything for it
    /// (issue 21, finding 4: an unknown tenant's link was a failed INSERT and a 500).
    func existingTenantKey(
        _ purpose: TenantKeyPurpose, tenantId: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> SymmetricKey? {
        let name = TenantKeyName(tenantId: tenantId, purpose: purpose)
        if let key = tenantKeys.withLock({ $0[name] }) { return key }
        let context = Self.tenantKeyContext(tenantId, purpose.rawValue)
        let rows = try await connection.closeSafeQuery(
            """
            SELECT wrapped_key, master_key_id FROM tenant_keys
            WHERE tenant_id = \(tenantId) AND purpose = \(purpose.rawValue)
            """, logger: logger)
        for try await (wrapped, wrappedBy) in rows.decode((ByteBuffer, ByteBuffer?).self) {
            let key = try unwrap(
                Array(wrapped.readableBytesView), wrappedBy: wrappedBy.map { Array($0.readableBytesView) },
                context: context, what: "tenant's \(purpose.rawValue) key")
            tenantKeys.withLock { $0[name] = key }
            return key
        }
        return nil
    }

    func newSubjectKey(subjectId: UUID) -> (key: SymmetricKey, wrapped: [UInt8], masterKeyId: [UInt8]) {
        let (key, wrapped) = FieldCipher.newWrappedKey(master: master, context: Self.subjectKeyContext(subjectId))
        return (key, wrapped, masterId)
    }

    func unwrapSubjectKey(_ wrapped: [UInt8], wrappedBy: [UInt8]? = nil, subjectId: UUID) throws -> SymmetricKey {
        try unwrap(
            wrapped, wrappedBy: wrappedBy, context: Self.subjectKeyContext(subjectId), what: "subject's data key")
    }

    /// Opens with the master that `wrappedBy` names; a key from before master ids were stored is tried against each.
    func unwrap(_ wrapped: [UInt8], wrappedBy: [UInt8]?, context: String, what: String) throws -> SymmetricKey {
        let candidates = wrappedBy.map { id in unwrapping.filter { $0.id == id } } ?? unwrapping
        for candidate in candidates {
            if let key = try? FieldCipher.unwrapKey(wrapped, master: candidate.key, context: context) { return key }
        }
        throw KeyUnreadable(what: what)
    }

    /// Re-wraps a key under the wrapping master; the key itself, and so every ciphertext under it, is unchanged.
    func rewrap(_ wrapped: [UInt8], wrappedBy: [UInt8]?, context: String) throws -> [UInt8] {
        let key = try unwrap(wrapped, wrappedBy: wrappedBy, context: context, what: "key")
        return key.withUnsafeBytes { FieldCipher.seal(Array($0), key: master, context: context) }
    }

    static func subjectKeyContext(_ subjectId: UUID) -> String { "subject-key:\(subjectId.lowercased)" }
    static func tenantKeyContext(_ tenantId: UUID, _ purpose: String) -> String {
        "tenant-key:\(tenantId.lowercased):\(purpose)"
    }
}
