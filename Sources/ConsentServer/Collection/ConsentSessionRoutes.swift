import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Checkout consent sessions: the shop's backend opens one with its key (`POST /v1/consent-sessions`); the widget
/// on the checkout page reads the notice and posts the person's decision with the token alone.
struct ConsentSessionRoutes {
    let database: ConsentDatabase
    let collection: CollectionPolicy
    var sessions: ConsentSessionStore { database.consentSessions }

    func register(keyed v1: RouterGroup<ConsentRequestContext>, open router: Router<ConsentRequestContext>) {
        v1.post("/consent-sessions") { request, context in try await open(request, context: context) }
        router.get("/v1/consent-sessions/{token}") { request, context in try await describe(request, context: context) }
        router.post("/v1/consent-sessions/{token}/decision") { request, context in
            try await decide(request, context: context)
        }
        for path in ["/v1/consent-sessions/{token}", "/v1/consent-sessions/{token}/decision"] {
            router.on(RouterPath(path), method: .options) { request, context in
                try await preflight(request, context: context)
            }
        }
        router.get("/widget.js") { _, _ in WidgetScript.response() }
    }

    // MARK: the shop's backend

    struct OpenBody: Codable {
        let subject: String
        let channel: String
        let noticeId: String
        let pageUrl: String
    }

    struct OpenedView: Encodable {
        let token: String
        let expiresAt: Date
    }

    func open(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let (body, claim) = try await request.decodeWrite(
            OpenBody.self, operation: "POST /v1/consent-sessions", context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        let noticeId = try Input.uuid(body.noticeId, field: "noticeId")
        let pageUrl: String
        do {
            pageUrl = try Provenance.validated(pageUrl: body.pageUrl, userAgent: nil, ipAddress: nil).pageUrl
        } catch {
            throw APIError.invalid(
                "pageUrl", "'pageUrl' must be an absolute http or https URL of at most \(Provenance.maxURLLength) bytes"
            )
        }
        return try await database.commit(
            sessions.open(
                subject: subject, noticeId: noticeId, pageUrl: pageUrl, lifetime: collection.consentSessionLifetime,
                caller: caller),
            idempotency: claim, logger: context.logger,
            render: { try StoredResponse.json(.created, OpenedView(token: $0.token.text, expiresAt: $0.expiresAt)) }
        ).httpResponse
    }

    // MARK: the widget (no key)

    struct NoticeView: Encodable {
        let id: String
        let text: String
        let language: String
        let purposes: [String]
    }

    struct SessionView: Encodable {
        let notice: NoticeView
        let channel: String
        let expiresAt: Date
    }

    func token(_ context: ConsentRequestContext) throws -> TenantToken {
        guard let token = context.parameters.get("token").flatMap(TenantToken.init) else {
            throw APIError(.notFound, code: "consent_session_not_found", message: "no consent session has this token")
        }
        return token
    }

    func describe(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let token = try token(context)
        let view = try await sessions.describe(token, logger: context.logger)
        let verdict = CrossOrigin.verdict(
            request, allowed: view.allowedOrigins, publicBaseURL: collection.publicBaseURL)
        guard verdict != .refused else { throw ConsentSessionOriginRefused() }
        let notice = view.notice
        return try JSONResponse.encoding(
            SessionView(
                notice: NoticeView(
                    id: notice.id.lowercased, text: notice.text, language: notice.language, purposes: notice.purposes),
                channel: notice.channel.rawValue, expiresAt: view.expiresAt),
            headers: CrossOrigin.headers(verdict).merging([.cacheControl: "no-store"]))
    }

    struct DecisionBody: Codable {
        let accepted: Bool
    }

    struct DecisionView: Encodable {
        let accepted: Bool
        let consents: [ConsentRoutes.ConsentView]
    }

    func decide(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let token = try token(context)
        let body = try await request.decodeJSON(DecisionBody.self, context: context)
        let decision = try await database.commit(
            sessions.decide(
                token, accepted: body.accepted, userAgent: request.headers[.userAgent],
                ipAddress: clientAddress(request, context: context),
                page: CrossOrigin.page(request, publicBaseURL: collection.publicBaseURL)),
            logger: context.logger)
        let consents = (decision.optIn?.consents ?? []).map(ConsentRoutes.ConsentView.init)
        return try JSONResponse.encoding(
            DecisionView(accepted: decision.accepted, consents: consents), status: decision.accepted ? .created : .ok,
            headers: CrossOrigin.headers(decision.verdict))
    }

    func preflight(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        guard let token = context.parameters.get("token").flatMap(TenantToken.init) else {
            throw APIError(.notFound, code: "consent_session_not_found", message: "no consent session has this token")
        }
        let allowed = try await sessions.allowedOrigins(token, logger: context.logger)
        return CrossOrigin.preflight(
            CrossOrigin.verdict(request, allowed: allowed, publicBaseURL: collection.publicBaseURL))
    }

    /// The socket's peer, or the last `X-Forwarded-For` hop when the operator says a proxy sets it.
    func clientAddress(_ request: Request, context: ConsentRequestContext) -> String? {
        if collection.trustForwardedFor, let forwarded = request.headers[.forwardedFor],
            let last = forwarded.split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }),
            let address = IPAddressText.normalised(last)
        {
            return address
        }
        return context.remoteAddress
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}
