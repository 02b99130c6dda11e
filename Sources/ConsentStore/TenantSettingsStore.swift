import ConsentCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A tenant's settings for the channels that reach people without an API key: the origins whose pages may use
/// the checkout widget, and the WhatsApp app secret (sealed under the tenant's settings key) and verify token
/// (kept as a hash) that authenticate Meta's webhook.
public struct TenantSettingsStore: Sendable {
    let client: PostgresClient
    let keyring: TenantKeyring

    public init(client: PostgresClient, keyring: TenantKeyring) {
        self.client = client
        self.keyring = keyring
    }

    public static let maxOrigins = 50

    public func origins(tenantId: UUID, logger: Logger) async throws -> [AllowedOrigin] {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            try await Self.origins(on: connection, logger: logger)
        }
    }

    static func origins(on connection: PostgresConnection, logger: Logger) async throws -> [AllowedOrigin] {
        let rows = try await connection.closeSafeQuery("SELECT allowed_origins FROM tenant_settings", logger: logger)
        return try await rows.decode([String].self).array().first?.compactMap(AllowedOrigin.init) ?? []
    }

    /// Replaces the list; the audit event names the origins (they are the shop's sites, not personal data).
    public func setOrigins(_ origins: [AllowedOrigin], caller: CallerIdentity, logger: Logger) async throws
        -> [AllowedOrigin]
    {
        let sorted = Array(Set(origins)).sorted()
        let texts = sorted.map(\.text)
        try await client.withTenantTransaction(caller.tenantId, logger: logger) { connection in
            try await connection.closeSafeQuery(
                """
                INSERT INTO tenant_settings (tenant_id, allowed_origins) VALUES (\(caller.tenantId), \(texts))
                ON CONFLICT (tenant_id) DO UPDATE SET allowed_origins = EXCLUDED.allowed_origins, updated_at = now()
                """, logger: logger)
            try await AuditTrail.append(
                [AuditEvent(action: .settingsOriginsChanged, actor: caller.actor, data: ["origins": .strings(texts)])],
                tenantId: caller.tenantId, on: connection, logger: logger)
        }
        return sorted
    }

    /// Which messages the webhook takes as the tenant's: those sent to one of its business numbers (none
    /// configured: any), and which button payloads are its own stop buttons.
    public struct WhatsAppRouting: Sendable, Equatable {
        public let phoneNumberIds: Set<String>
        public let stopPayloads: Set<String>

        public static let open = WhatsAppRouting(phoneNumberIds: [], stopPayloads: [])

        public init(phoneNumberIds: Set<String>, stopPayloads: Set<String>) {
            self.phoneNumberIds = phoneNumberIds
            self.stopPayloads = stopPayloads
        }

        public func accepts(businessNumberId: String?) -> Bool {
            guard !phoneNumberIds.isEmpty else { return true }
            return businessNumberId.map(phoneNumberIds.contains) ?? false
        }
    }

    public func whatsAppRouting(tenantId: UUID, logger: Logger) async throws -> WhatsAppRouting {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                "SELECT whatsapp_phone_number_ids, whatsapp_stop_payloads FROM tenant_settings", logger: logger)
            guard let (numbers, payloads) = try await rows.decode(([String], [String]).self).array().first else {
                return .open
            }
            return WhatsAppRouting(phoneNumberIds: Set(numbers), stopPayloads: Set(payloads))
        }
    }

    /// Stores the app secret sealed and the verify token hashed; neither is ever shown again. The business
    /// numbers and stop payloads replace the stored ones.
    public func setWhatsApp(
        appSecret: String, verifyToken: String, routing: WhatsAppRouting = .open, caller: CallerIdentity,
        logger: Logger
    ) async throws {
        let tenantId = caller.tenantId
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let key = try await keyring.tenantKey(.settings, tenantId: tenantId, on: connection, logger: logger)
            let sealed = FieldCipher.seal(Array(appSecret.utf8), key: key, context: Self.appSecretContext(tenantId))
            let tokenHash = Array(SHA256.hash(data: Array(verifyToken.utf8)))
            try await connection.closeSafeQuery(
                """
                INSERT INTO tenant_settings (tenant_id, whatsapp_app_secret_ciphertext, whatsapp_verify_token_sha256,
                                             whatsapp_phone_number_ids, whatsapp_stop_payloads)
                VALUES (\(tenantId), \(ByteBuffer(bytes: sealed)), \(ByteBuffer(bytes: tokenHash)),
                        \(routing.phoneNumberIds.sorted()), \(routing.stopPayloads.sorted()))
                ON CONFLICT (tenant_id) DO UPDATE SET
                    whatsapp_app_secret_ciphertext = EXCLUDED.whatsapp_app_secret_ciphertext,
                    whatsapp_verify_token_sha256 = EXCLUDED.whatsapp_verify_token_sha256,
                    whatsapp_phone_number_ids = EXCLUDED.whatsapp_phone_number_ids,
                    whatsapp_stop_payloads = EXCLUDED.whatsapp_stop_payloads, updated_at = now()
                """, logger: logger)
            try await AuditTrail.append(
                [
                    AuditEvent(
                        action: .settingsWhatsAppChanged, actor: caller.actor,
                        data: [
                            "phoneNumberIds": .strings(routing.phoneNumberIds.sorted()),
                            "stopPayloads": .int(Int64(routing.stopPayloads.count)),
                        ])
                ],
                tenantId: tenantId, on: connection, logger: logger)
        }
    }

    /// What the webhook needs: the app secret, and the verify token's hash. Nil when WhatsApp is not configured.
    public struct WhatsAppCredentials: Sendable {
        public let appSecret: [UInt8]
        let verifyTokenHash: [UInt8]

        /// Constant-time: the token is a shared secret.
        public func verifyTokenMatches(_ presented: String) -> Bool {
            ConstantTime.equal(Array(SHA256.hash(data: Array(presented.utf8))), verifyTokenHash)
        }
    }

    public func whatsApp(tenantId: UUID, logger: Logger) async throws -> WhatsAppCredentials? {
        try await client.withTenantTransaction(tenantId, logger: logger) { connection in
            let rows = try await connection.closeSafeQuery(
                """
                SELECT whatsapp_app_secret_ciphertext, whatsapp_verify_token_sha256 FROM tenant_settings
                WHERE whatsapp_app_secret_ciphertext IS NOT NULL
                """, logger: logger)
            guard let (sealed, tokenHash) = try await rows.decode((ByteBuffer, ByteBuffer).self).array().first else {
                return nil
            }
            let key = try await keyring.tenantKey(.settings, tenantId: tenantId, on: connection, logger: logger)
            let secret = try FieldCipher.open(
                Array(sealed.readableBytesView), key: key, context: Self.appSecretContext(tenantId))
            return WhatsAppCredentials(appSecret: secret, verifyTokenHash: Array(tokenHash.readableBytesView))
        }
    }

    static func appSecretContext(_ tenantId: UUID) -> String { "whatsapp-app-secret:\(tenantId.lowercased)" }
}
