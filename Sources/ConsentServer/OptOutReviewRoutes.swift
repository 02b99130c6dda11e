import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// The DPO's queue of messages that said stop in the person's own words (`GET /v1/opt-out-reviews`), and their
/// resolution (`POST /v1/opt-out-reviews/{id}/resolve` `{"resolution": "withdraw_all" | "keep"}`).
struct OptOutReviewRoutes {
    let reviews: OptOutReviewDesk
    let database: ConsentDatabase

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/opt-out-reviews") { request, context in try await list(request, context: context) }
        group.post("/opt-out-reviews/{id}/resolve") { request, context in
            try await resolve(request, context: context)
        }
    }

    struct ReviewView: Encodable {
        let id: String
        let subjectRef: String
        let channel: String
        let receivedAt: Date
        let openedAt: Date
        /// The message as the person wrote it: personal data, shown to the DPO only, never logged.
        let text: String?
        let resolution: String?
        let resolvedAt: Date?

        init(_ review: OptOutReview) {
            id = review.id.lowercased
            subjectRef = review.subjectRef.lowercased
            channel = review.channel.rawValue
            receivedAt = review.receivedAt
            openedAt = review.openedAt
            text = review.text
            resolution = review.resolution?.rawValue
            resolvedAt = review.resolvedAt
        }
    }

    struct ReviewList: Encodable {
        let reviews: [ReviewView]
    }

    func list(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        let status = try request.uri.queryParameters["status"].map { String($0) }
        guard status == nil || status == "open" || status == "all" else {
            throw APIError.invalid("status", "'status' must be open or all")
        }
        let found = try await reviews.list(
            tenantId: caller.tenantId, includeResolved: status == "all", logger: context.logger)
        return try JSONResponse.encoding(
            ReviewList(reviews: found.map(ReviewView.init)), headers: [.cacheControl: "no-store"])
    }

    struct ResolveBody: Codable {
        let resolution: String
    }

    struct ResolvedView: Encodable {
        let id: String
        let resolution: String
        let revoked: [ConsentRoutes.RevokedView]
        let consistencyToken: String?
    }

    func resolve(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .dpo)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw APIError.notFound("no opt-out review has this id")
        }
        let body = try await request.decodeJSON(ResolveBody.self, context: context)
        let resolution: OptOutReview.Resolution = try Input.oneOf(body.resolution, field: "resolution")
        let resolved = try await database.commit(
            reviews.resolve(id, as: resolution, caller: caller), logger: context.logger)
        return try JSONResponse.encoding(
            ResolvedView(
                id: id.lowercased, resolution: resolution.rawValue,
                revoked: resolved.revoked.map(ConsentRoutes.RevokedView.init),
                consistencyToken: resolved.change.map { ConsistencyToken(position: $0.position).description }))
    }
}
