import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/webhooks`: the tenant's change-webhook endpoints, a disabled one first and said plainly (its
/// deliveries are held until it is enabled), each with its latest deliveries: every attempt's status code or
/// error and latency, and a redelivery. The same store calls as `/v1/webhooks/endpoints`; registering, rotating
/// and deleting stay with the admin API, whose secrets the console never shows.
extension ConsoleRoutes {
    func registerWebhooks(on router: Router<ConsentRequestContext>) {
        router.get("/console/webhooks") { request, context in
            try await signedIn(request, context: context) { session in
                try await webhooksPage(session: session, context: context)
            }
        }
        router.post("/console/webhooks/redeliver") { request, context in
            try await posting(RedeliverForm.self, request, context: context) { session, form in
                guard let endpointId = form.endpoint.flatMap(UUID.init(uuidString:)),
                    let deliveryId = form.delivery.flatMap(Int64.init)
                else { return incomplete(session) }
                do {
                    let queued = try await webhooks.redeliver(
                        tenantId: session.caller.tenantId, endpointId: endpointId, deliveryId: deliveryId,
                        actor: session.caller.actor, logger: context.logger)
                    return try await webhooksPage(
                        session: session, context: context,
                        flash: "Delivery \(deliveryId) queued again as delivery \(queued.deliveryId).")
                } catch WebhookEndpointError.deliveryNotFound, WebhookEndpointError.notFound {
                    return render(
                        Refusal(status: .notFound, reason: "No such delivery.", title: "Not found"), session: session)
                }
            }
        }
        router.post("/console/webhooks/enable") { request, context in
            try await posting(EnableForm.self, request, context: context) { session, form in
                guard let endpointId = form.endpoint.flatMap(UUID.init(uuidString:)) else { return incomplete(session) }
                do {
                    _ = try await webhooks.enable(
                        tenantId: session.caller.tenantId, id: endpointId, actor: session.caller.actor,
                        logger: context.logger)
                    return try await webhooksPage(
                        session: session, context: context, flash: "Enabled: held deliveries are being sent.")
                } catch WebhookEndpointError.notFound {
                    return render(
                        Refusal(status: .notFound, reason: "No such endpoint.", title: "Not found"), session: session)
                } catch WebhookEndpointError.targetRefused(let refusal) {
                    return render(
                        Refusal(status: .unprocessableContent, reason: "Not enabled: the URL \(refusal)."),
                        session: session)
                }
            }
        }
    }

    private struct RedeliverForm: ConsoleForm {
        let csrf: String?
        let endpoint: String?
        let delivery: String?
    }

    private struct EnableForm: ConsoleForm {
        let csrf: String?
        let endpoint: String?
    }

    private func incomplete(_ session: ConsoleSession) -> Response {
        render(Refusal(status: .badRequest, reason: "The form was incomplete; nothing was changed."), session: session)
    }

    private func webhooksPage(session: ConsoleSession, context: ConsentRequestContext, flash: String? = nil)
        async throws -> Response
    {
        let tenantId = session.caller.tenantId
        let endpoints = try await webhooks.list(tenantId: tenantId, logger: context.logger)
            .sorted { ($0.status == .disabled ? 0 : 1, $0.createdAt) < ($1.status == .disabled ? 0 : 1, $1.createdAt) }
        var views: [WebhooksView.Endpoint] = []
        for endpoint in endpoints {
            let deliveries = try await webhooks.deliveries(
                tenantId: tenantId, endpointId: endpoint.id, limit: 25, before: nil, logger: context.logger)
            views.append(WebhooksView.Endpoint(endpoint, deliveries: deliveries))
        }
        let disabled = endpoints.filter { $0.status == .disabled }.count
        return render(
            WebhooksView(endpoints: views), title: "Webhooks", session: session, flash: flash,
            problem: disabled == 0
                ? nil
                : "\(disabled) webhook endpoint(s) disabled after repeated failure: their deliveries are held.")
    }
}

struct WebhooksView: ConsoleBody {
    static let template = PageTemplates.Name.consoleWebhooks
    static let section: ConsoleNav.Section? = .webhooks

    struct Endpoint: Sendable {
        let id: String
        let url: String
        let description: String
        let events: String
        let disabled: Bool
        let disabledAt: String?
        let disabledReason: String?
        let createdAt: String
        let deliveries: [Delivery]
    }

    struct Delivery: Sendable {
        let id: String
        let endpointId: String
        let type: String
        let state: String
        let failed: Bool
        let createdAt: String
        let nextAttemptAt: String?
        let redeliveryOf: String?
        let attempts: [Attempt]
    }

    struct Attempt: Sendable {
        let attempt: Int
        let at: String
        let outcome: String
        let latency: String
    }

    let endpoints: [Endpoint]
}

extension WebhooksView.Endpoint {
    init(_ endpoint: WebhookEndpoint, deliveries: [WebhookDelivery]) {
        id = endpoint.id.lowercased
        url = endpoint.url
        description = endpoint.description
        events = endpoint.events.map(\.rawValue).joined(separator: ", ")
        disabled = endpoint.status == .disabled
        disabledAt = endpoint.disabledAt.map(ConsoleRoutes.time)
        disabledReason = endpoint.disabledReason
        createdAt = ConsoleRoutes.time(endpoint.createdAt)
        self.deliveries = deliveries.map { delivery in
            WebhooksView.Delivery(
                id: String(delivery.id), endpointId: endpoint.id.lowercased, type: delivery.type,
                state: delivery.state.rawValue, failed: delivery.state == .failed,
                createdAt: ConsoleRoutes.time(delivery.createdAt),
                nextAttemptAt: delivery.nextAttemptAt.map(ConsoleRoutes.time),
                redeliveryOf: delivery.redeliveryOf.map(String.init),
                attempts: delivery.attempts.map { attempt in
                    WebhooksView.Attempt(
                        attempt: attempt.attempt, at: ConsoleRoutes.time(attempt.at),
                        outcome: attempt.statusCode.map { "HTTP \($0)" } ?? (attempt.error ?? "no answer"),
                        latency: "\(attempt.latencyMilliseconds) ms")
                })
        }
    }
}
