import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Checkout consent sessions: the shop's backend opens one with its key (`POST /v1/consent-sessions`); the widget
/// on the checkout page reads the notice, with a box per category it covers, and posts the person's decision with
/// the token alone.
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
            OpenBody.self, operation: "POST /v1/consent-sessions", subjectFields: ["subject"], context: context)
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
            idempotency: claim?.naming([subject]), logger: context.logger,
            render: {
                // The token is a bearer credential: sent once, never kept for a replay.
                try StoredResponse.json(
                    .created, OpenedView(token: $0.token.text, expiresAt: $0.expiresAt), replayable: false)
            }
        ).httpResponse
    }

    // MARK: the widget (no key)

    struct NoticeView: Encodable {
        let id: String
        let text: String
        let language: String
        let purposes: [String]
    }

    private struct PurposeView: Encodable {
        let key: String
        let name: String
    }

    /// One box: ticking it consents to these purposes and no others.
    private struct CategoryView: Encodable {
        let category: String
        /// The box's wording: the purposes' names as the tenant's catalogue has them.
        let label: String
        let purposes: [PurposeView]

        init(_ category: NoticeCategory) {
            self.category = category.category.rawValue
            label = category.label
            purposes = category.purposes.map { PurposeView(key: $0.key, name: $0.name) }
        }
    }

    private struct SessionView: Encodable {
        let notice: NoticeView
        let categories: [CategoryView]
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
                categories: view.categories.map(CategoryView.init), channel: notice.channel.rawValue,
                expiresAt: view.expiresAt),
            headers: CrossOrigin.headers(verdict).merging([.cacheControl: "no-store"]))
    }

    /// Exactly one of `accepted` (a notice of one category) and `categories` (true or false for each of the
    /// notice's categories). Other fields are ignored: the page cannot name another person or purpose.
    private struct DecisionBody: Decodable {
        let accepted: Bool?
        let categories: [String: Bool]?

        private enum CodingKeys: String, CodingKey {
            case accepted, categories
        }

        /// A field sent as null is refused rather than read as absent, so that `{"accepted": null, "categories":
        /// …}` is not taken for a body with one answer.
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            accepted = container.contains(.accepted) ? try container.decode(Bool.self, forKey: .accepted) : nil
            categories =
                container.contains(.categories) ? try container.decode([String: Bool].self, forKey: .categories) : nil
        }

        var choice: ConsentSessionChoice {
            get throws {
                switch (accepted, categories) {
                case (let accepted?, nil): return .whole(accepted: accepted)
                case (nil, let categories?): return .categories(categories)
                case (.some, .some):
                    throw APIError.invalid("categories", "send either 'accepted' or 'categories', not both")
                case (nil, nil):
                    throw APIError.invalid(
                        "categories",
                        "'categories' is required: true or false for each category the notice covers "
                            + "(or 'accepted' for a notice of one category)")
                }
            }
        }
    }

    private struct DecisionView: Encodable {
        /// Whether anything was ticked, and so recorded.
        let accepted: Bool
        /// Each of the notice's categories, true where its box was ticked.
        let categories: [String: Bool]
        let consents: [ConsentRoutes.ConsentView]
    }

    func decide(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let token = try token(context)
        let choice = try await request.decodeJSON(DecisionBody.self, context: context).choice
        let decision: ConsentSessionDecision
        do {
            decision = try await database.commit(
                sessions.decide(
                    token, choice: choice, userAgent: request.headers[.userAgent],
                    ipAddress: clientAddress(request, context: context),
                    page: CrossOrigin.page(request, publicBaseURL: collection.publicBaseURL)),
                logger: context.logger)
        } catch let refused as ConsentSessionChoiceError {
            throw APIError(refused)
        }
        let consents = (decision.optIn?.consents ?? []).map(ConsentRoutes.ConsentView.init)
        let categories = Dictionary(
            uniqueKeysWithValues: decision.categories.map { ($0.rawValue, decision.ticked.contains($0)) })
        return try JSONResponse.encoding(
            DecisionView(accepted: decision.accepted, categories: categories, consents: consents),
            status: decision.accepted ? .created : .ok, headers: CrossOrigin.headers(decision.verdict))
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
        ClientAddress.of(request, context: context, trustForwardedFor: collection.trustForwardedFor)
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var merged = self
        for field in other { merged[field.name] = field.value }
        return merged
    }
}

extension APIError {
    /// A decision that does not fit the notice: 422, and the token stays usable for a corrected one.
    fileprivate init(_ refused: ConsentSessionChoiceError) {
        switch refused {
        case .bundled(let categories):
            self.init(
                .unprocessableContent, code: "categories_required",
                message: "this notice covers \(Self.list(categories.map(\.rawValue))): send 'categories' with true "
                    + "or false for each, since one 'accepted' would consent to all of them with one tick",
                field: "accepted")
        case .categoriesMismatch(let expected, let unknown, let missing):
            var problems: [String] = []
            if !unknown.isEmpty {
                // The page's own keys, cut short: the message should not echo a large body back.
                problems.append("unknown: \(Self.list(unknown.prefix(5).map { String($0.prefix(40)) }))")
            }
            if !missing.isEmpty { problems.append("missing: \(Self.list(missing.map(\.rawValue)))") }
            self = .invalid(
                "categories",
                "'categories' must name exactly the notice's categories (\(Self.list(expected.map(\.rawValue)))), "
                    + "each true or false; \(problems.joined(separator: "; "))")
        }
    }

    private static func list(_ names: [String]) -> String { names.joined(separator: ", ") }
}
