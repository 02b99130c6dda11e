import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Change webhooks for a tenant's admin: endpoints registered with the events they want, their secrets (shown
/// once, rotated with an overlap), a test send, and each endpoint's deliveries with their attempts and a manual
/// redelivery. Sending is the store's `WebhookDeliveryService`.
struct WebhookRoutes {
    let endpoints: WebhookEndpointStore

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/webhooks/endpoints") { request, context in try await create(request, context: context) }
        group.get("/webhooks/endpoints") { _, context in try await list(context: context) }
        group.get("/webhooks/endpoints/{id}") { _, context in try await show(context: context) }
        group.delete("/webhooks/endpoints/{id}") { _, context in try await delete(context: context) }
        group.post("/webhooks/endpoints/{id}/rotate-secret") { _, context in try await rotate(context: context) }
        group.post("/webhooks/endpoints/{id}/enable") { _, context in try await enable(context: context) }
        group.post("/webhooks/endpoints/{id}/test") { _, context in try await test(context: context) }
        group.get("/webhooks/endpoints/{id}/deliveries") { request, context in
            try await deliveries(request, context: context)
        }
        group.post("/webhooks/endpoints/{id}/deliveries/{deliveryId}/redeliver") { _, context in
            try await redeliver(context: context)
        }
    }

    struct Registration: Decodable {
        let url: String
        let events: [String]
        let description: String?
    }

    struct EndpointView: Encodable {
        let id: String
        let url: String
        let description: String
        let events: [String]
        let status: String
        let disabledAt: Date?
        let disabledReason: String?
        let createdAt: Date
        let previousSecretValidUntil: Date?

        init(_ endpoint: WebhookEndpoint) {
            id = endpoint.id.lowercased
            url = endpoint.url
            description = endpoint.description
            events = endpoint.events.map(\.rawValue)
            status = endpoint.status.rawValue
            disabledAt = endpoint.disabledAt
            disabledReason = endpoint.disabledReason
            createdAt = endpoint.createdAt
            previousSecretValidUntil = endpoint.previousSecretValidUntil
        }
    }

    /// An endpoint with its secret: the answer to a registration or a rotation, and nothing else.
    struct EndpointWithSecret: Encodable {
        let endpoint: EndpointView
        let secret: String

        func encode(to encoder: any Encoder) throws {
            try endpoint.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(secret, forKey: .secret)
        }

        enum Key: CodingKey { case secret }
    }

    struct Queued: Encodable {
        let deliveryId: Int64
        let eventId: String
    }

    struct DeliveryView: Encodable {
        let id: Int64
        let eventId: String
        let type: String
        let state: String
        let createdAt: Date
        let nextAttemptAt: Date?
        let completedAt: Date?
        let redeliveryOf: Int64?
        let attempts: [AttemptView]

        init(_ delivery: WebhookDelivery) {
            id = delivery.id
            eventId = delivery.eventId.lowercased
            type = delivery.type
            state = delivery.state.rawValue
            createdAt = delivery.createdAt
            nextAttemptAt = delivery.nextAttemptAt
            completedAt = delivery.completedAt
            redeliveryOf = delivery.redeliveryOf
            attempts = delivery.attempts.map(AttemptView.init)
        }
    }

    struct AttemptView: Encodable {
        let attempt: Int
        let at: Date
        let statusCode: Int?
        let latencyMs: Int
        let error: String?

        init(_ attempt: WebhookAttempt) {
            self.attempt = attempt.attempt
            at = attempt.at
            statusCode = attempt.statusCode
            latencyMs = attempt.latencyMilliseconds
            error = attempt.error
        }
    }

    func create(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let body = try await request.decodeJSON(Registration.self, context: context)
        let url = try Input.text(body.url, field: "url", maxLength: 2048)
        let description =
            try body.description.map { raw throws(APIError) in
                try Input.text(raw, field: "description", maxLength: 500)
            } ?? ""
        guard !body.events.isEmpty, body.events.count <= 32 else {
            throw APIError.invalid("events", "name at least one event type: \(Self.eventNames)")
        }
        let created = try await endpoints.create(
            tenantId: caller.tenantId, url: url, events: body.events, description: description, actor: caller.actor,
            logger: context.logger)
        return try JSONResponse.encoding(
            EndpointWithSecret(endpoint: EndpointView(created.endpoint), secret: created.secret.encoded),
            status: .created)
    }

    func list(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let all = try await endpoints.list(tenantId: caller.tenantId, logger: context.logger)
        return try JSONResponse.encoding(["endpoints": all.map(EndpointView.init)])
    }

    func show(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let endpoint = try await endpoints.endpoint(
            tenantId: caller.tenantId, id: try endpointId(context), logger: context.logger)
        return try JSONResponse.encoding(EndpointView(endpoint))
    }

    func delete(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        try await endpoints.delete(
            tenantId: caller.tenantId, id: try endpointId(context), actor: caller.actor, logger: context.logger)
        return Response(status: .noContent)
    }

    func rotate(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let rotated = try await endpoints.rotateSecret(
            tenantId: caller.tenantId, id: try endpointId(context), actor: caller.actor, logger: context.logger)
        return try JSONResponse.encoding(
            EndpointWithSecret(endpoint: EndpointView(rotated.endpoint), secret: rotated.secret.encoded))
    }

    func enable(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let endpoint = try await endpoints.enable(
            tenantId: caller.tenantId, id: try endpointId(context), actor: caller.actor, logger: context.logger)
        return try JSONResponse.encoding(EndpointView(endpoint))
    }

    func test(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let queued = try await endpoints.sendTest(
            tenantId: caller.tenantId, id: try endpointId(context), actor: caller.actor, logger: context.logger)
        return try JSONResponse.encoding(
            Queued(deliveryId: queued.deliveryId, eventId: queued.eventId.lowercased), status: .accepted)
    }

    func deliveries(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let query = request.uri.queryParameters
        let limit =
            try query.get("limit").map { raw throws(APIError) -> Int in
                guard let value = Int(raw), (1...500).contains(value) else {
                    throw APIError.invalid("limit", "a whole number from 1 to 500")
                }
                return value
            } ?? 50
        let before = try query.get("before").map { raw throws(APIError) -> Int64 in
            guard let value = Int64(raw), value > 0 else {
                throw APIError.invalid("before", "a delivery id (a positive whole number)")
            }
            return value
        }
        let found = try await endpoints.deliveries(
            tenantId: caller.tenantId, endpointId: try endpointId(context), limit: limit, before: before,
            logger: context.logger)
        return try JSONResponse.encoding(["deliveries": found.map(DeliveryView.init)])
    }

    func redeliver(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        guard let deliveryId = context.parameters.get("deliveryId").flatMap(Int64.init), deliveryId > 0 else {
            throw APIError.notFound("no delivery has this id")
        }
        let queued = try await endpoints.redeliver(
            tenantId: caller.tenantId, endpointId: try endpointId(context), deliveryId: deliveryId,
            actor: caller.actor, logger: context.logger)
        return try JSONResponse.encoding(
            Queued(deliveryId: queued.deliveryId, eventId: queued.eventId.lowercased), status: .accepted)
    }

    private func endpointId(_ context: ConsentRequestContext) throws(APIError) -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw APIError.notFound("no webhook endpoint has this id")
        }
        return id
    }

    static let eventNames = WebhookEventType.subscribable.map(\.rawValue).joined(separator: ", ")
}
