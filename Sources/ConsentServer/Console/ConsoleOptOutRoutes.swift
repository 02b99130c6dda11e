import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `/console/opt-outs`: the messages that said stop in the person's own words, each resolved once by the DPO
/// (the store's `OptOutReviewDesk`, as `POST /v1/opt-out-reviews/{id}/resolve`).
extension ConsoleRoutes {
    func registerOptOuts(on router: Router<ConsentRequestContext>) {
        router.get("/console/opt-outs") { request, context in try await optOutsPage(request, context: context) }
        router.post("/console/opt-outs/resolve") { request, context in
            try await resolveOptOut(request, context: context)
        }
    }

    private struct ResolveForm: ConsoleForm {
        let csrf: String?
        let review: String?
        let resolution: String?
    }

    private func optOutsPage(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await signedIn(request, context: context) { session in
            try await optOuts(session: session, context: context)
        }
    }

    private func optOuts(session: ConsoleSession, context: ConsentRequestContext, flash: String? = nil)
        async throws -> Response
    {
        let reviews = try await database.optOutReviews.list(
            tenantId: session.caller.tenantId, includeResolved: false, logger: context.logger)
        return render(
            OptOutReviewsView(reviews: reviews.map(OptOutReviewsView.Review.init)), title: "Opt-outs",
            session: session, flash: flash)
    }

    private func resolveOptOut(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        try await posting(ResolveForm.self, request, context: context) { session, form in
            guard let id = form.review.flatMap(UUID.init(uuidString:)),
                let resolution = form.resolution.flatMap(OptOutReview.Resolution.init(rawValue:))
            else {
                return render(
                    Refusal(status: .badRequest, reason: "The form was incomplete; nothing was changed."),
                    session: session)
            }
            do {
                let resolved = try await database.commit(
                    database.optOutReviews.resolve(id, as: resolution, caller: session.caller),
                    logger: context.logger)
                let flash =
                    resolution == .keep
                    ? "Kept: only marketing stays withdrawn."
                    : "Withdrawn everything: \(resolved.revoked.count) consent(s)."
                return try await optOuts(session: session, context: context, flash: flash)
            } catch OptOutReviewError.notFound {
                return render(
                    Refusal(status: .notFound, reason: "No review has this id.", title: "Not found"), session: session)
            } catch OptOutReviewError.alreadyResolved {
                return render(
                    Refusal(status: .conflict, reason: "This review was already resolved; nothing was changed."),
                    session: session)
            }
        }
    }
}

struct OptOutReviewsView: ConsoleBody {
    static let template = PageTemplates.Name.consoleOptOuts
    static let section: ConsoleNav.Section? = .optOuts

    struct Review: Sendable {
        let id: String
        let subjectRef: String
        let channelLabel: String
        let receivedAt: String
        let openedAt: String
        let text: String

        init(_ review: OptOutReview) {
            id = review.id.lowercased
            subjectRef = review.subjectRef.lowercased
            channelLabel = SelfServiceText.channelName(review.channel)
            receivedAt = ConsoleRoutes.time(review.receivedAt)
            openedAt = ConsoleRoutes.time(review.openedAt)
            text = review.text ?? "(removed by retention)"
        }
    }

    let reviews: [Review]
}
