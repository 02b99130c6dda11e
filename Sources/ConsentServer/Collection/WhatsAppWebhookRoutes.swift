import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// Meta's WhatsApp Cloud API webhook for one tenant: `GET` answers the subscription handshake, `POST` takes
/// notifications signed with the tenant's app secret. No API key: the signature is the authentication.
struct WhatsAppWebhookRoutes {
    let settings: TenantSettingsStore
    let inbox: WhatsAppInbox

    func register(on router: Router<ConsentRequestContext>) {
        router.get("/v1/webhooks/whatsapp/{tenantId}") { request, context in
            try await handshake(request, context: context)
        }
        router.post("/v1/webhooks/whatsapp/{tenantId}") { request, context in
            try await notify(request, context: context)
        }
    }

    static let signatureHeader = HTTPField.Name("X-Hub-Signature-256")!

    func tenant(_ context: ConsentRequestContext) throws -> UUID {
        guard let id = context.parameters.get("tenantId").flatMap(UUID.init(uuidString:)) else {
            throw APIError.notFound("no such webhook")
        }
        return id
    }

    /// `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: the challenge echoed as plain text when the token
    /// is the tenant's, else 403.
    func handshake(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let tenantId = try tenant(context)
        let query = request.uri.queryParameters
        guard query.get("hub.mode") == "subscribe", let token = query.get("hub.verify_token"),
            let challenge = query.get("hub.challenge"), (1...256).contains(challenge.utf8.count),
            let credentials = try await settings.whatsApp(tenantId: tenantId, logger: context.logger),
            credentials.verifyTokenMatches(token)
        else {
            throw APIError(
                .forbidden, code: "verification_failed", message: "the verify token does not match this webhook's")
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: challenge)))
    }

    struct DeliveryView: Encodable {
        let received: Int
        let duplicates: Int
        let withdrawals: Int
        let confirmations: Int
        let templateChanges: Int
        /// How each message that said stop said it (`keyword`, `phrase`, `button`; `platform` for a marketing stop
        /// in the app), in the order received.
        let optOuts: [OptOutKind]
        /// Messages for a business number the tenant did not configure, or older than the replay window.
        let refused: Int
        /// Present when the delivery changed anything: a check carrying it sees the change on every instance.
        let consistencyToken: String?
    }

    func notify(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let tenantId = try tenant(context)
        let body = try await request.body.collect(upTo: ConsentRequestContext.maxBodyBytes)
        let bytes = Array(body.readableBytesView)
        // Unknown tenant, no secret configured, or a wrong signature all look the same: nothing is stored.
        guard let credentials = try await settings.whatsApp(tenantId: tenantId, logger: context.logger),
            WebhookSignature.isValid(
                header: request.headers[Self.signatureHeader], body: bytes, appSecret: credentials.appSecret)
        else {
            throw APIError(
                .unauthorized, code: "invalid_signature",
                message:
                    "X-Hub-Signature-256 is missing or is not the HMAC-SHA256 of the body under this webhook's app secret"
            )
        }
        let notification: WhatsAppNotification
        let events: [WhatsAppEvent]
        do {
            notification = try JSONDecoder().decode(WhatsAppNotification.self, from: Data(bytes))
            events = try WhatsAppEvent.events(in: notification)
        } catch {
            throw APIError(
                .badRequest, code: "invalid_payload",
                message: "the body is not a WhatsApp Business Account notification")
        }
        let outcome = try await inbox.record(events, tenantId: tenantId, logger: context.logger)
        context.logger.info(
            "whatsapp webhook",
            metadata: [
                "tenant": "\(tenantId)", "messages": "\(outcome.messagesRecorded)",
                "duplicates": "\(outcome.duplicates)",
                "withdrawals": "\(outcome.withdrawals)", "skipped": "\(outcome.skipped)",
                "refused": "\(outcome.refused)",
                "templateChanges": "\(outcome.templateChanges)",
            ])
        return try JSONResponse.encoding(
            DeliveryView(
                received: outcome.messagesRecorded, duplicates: outcome.duplicates, withdrawals: outcome.withdrawals,
                confirmations: outcome.confirmations, templateChanges: outcome.templateChanges,
                optOuts: outcome.optOuts, refused: outcome.refused, consistencyToken: outcome.token?.description))
    }
}
