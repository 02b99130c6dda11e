import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// A tenant's admin settings for collection: the origins the widget may be used from, and the WhatsApp webhook's
/// app secret and verify token.
struct SettingsRoutes {
    let settings: TenantSettingsStore

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/settings/origins") { _, context in try await origins(context: context) }
        group.put("/settings/origins") { request, context in try await setOrigins(request, context: context) }
        group.put("/settings/whatsapp") { request, context in try await setWhatsApp(request, context: context) }
    }

    struct OriginsBody: Codable {
        let origins: [String]
    }

    struct OriginsView: Encodable {
        let origins: [String]
    }

    func origins(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let origins = try await settings.origins(tenantId: caller.tenantId, logger: context.logger)
        return try JSONResponse.encoding(OriginsView(origins: origins.map(\.text)))
    }

    func setOrigins(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let body = try await request.decodeJSON(OriginsBody.self, context: context)
        guard body.origins.count <= TenantSettingsStore.maxOrigins else {
            throw APIError.invalid("origins", "'origins' holds at most \(TenantSettingsStore.maxOrigins) origins")
        }
        var parsed: [AllowedOrigin] = []
        for (index, text) in body.origins.enumerated() {
            guard let origin = AllowedOrigin(text) else {
                throw APIError.invalid(
                    "origins[\(index)]",
                    "'origins[\(index)]' must be an http or https origin with no path, such as https://shop.example")
            }
            parsed.append(origin)
        }
        let stored = try await settings.setOrigins(parsed, caller: caller, logger: context.logger)
        return try JSONResponse.encoding(OriginsView(origins: stored.map(\.text)))
    }

    struct WhatsAppBody: Codable {
        let appSecret: String
        let verifyToken: String
        /// The business numbers (Meta's phone number ids) whose messages are this tenant's; none: any.
        let phoneNumberIds: [String]?
        /// Payloads of the tenant's own stop buttons, besides the platform's "Stop promotions".
        let stopButtonPayloads: [String]?
    }

    static let maxRoutingEntries = 20

    struct WhatsAppView: Encodable {
        let configured: Bool
        let webhookPath: String
    }

    func setWhatsApp(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let body = try await request.decodeJSON(WhatsAppBody.self, context: context)
        let secret = try Input.text(body.appSecret, field: "appSecret", maxLength: 256)
        let token = try Input.text(body.verifyToken, field: "verifyToken", maxLength: 256)
        guard secret.unicodeScalars.count >= 16 else {
            throw APIError.invalid(
                "appSecret", "'appSecret' must be the app's secret from Meta's app dashboard (at least 16 characters)")
        }
        let numbers = body.phoneNumberIds ?? []
        guard numbers.count <= Self.maxRoutingEntries,
            numbers.allSatisfy({ !$0.isEmpty && $0.count <= 32 && $0.allSatisfy({ $0.isASCII && $0.isNumber }) })
        else {
            throw APIError.invalid(
                "phoneNumberIds",
                "'phoneNumberIds' holds at most \(Self.maxRoutingEntries) of Meta's phone number ids (digits only)")
        }
        let given = body.stopButtonPayloads ?? []
        guard given.count <= Self.maxRoutingEntries else {
            throw APIError.invalid(
                "stopButtonPayloads", "'stopButtonPayloads' holds at most \(Self.maxRoutingEntries) payloads")
        }
        var payloads: [String] = []
        for (index, payload) in given.enumerated() {
            payloads.append(try Input.text(payload, field: "stopButtonPayloads[\(index)]", maxLength: 256))
        }
        try await settings.setWhatsApp(
            appSecret: secret, verifyToken: token,
            routing: .init(phoneNumberIds: Set(numbers), stopPayloads: Set(payloads)), caller: caller,
            logger: context.logger)
        return try JSONResponse.encoding(
            WhatsAppView(configured: true, webhookPath: "/v1/webhooks/whatsapp/\(caller.tenantId.lowercased)"))
    }
}
