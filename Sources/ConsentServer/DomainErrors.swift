import ConsentCore
import ConsentStore
import Foundation

extension APIError {
    /// The store's refusals in the contract's shape: invalid input is 422 and names the field.
    init?(domain error: any Error) {
        switch error {
        case ConsentWriteError.noticeNotFound:
            self = APIError(
                .unprocessableContent, code: "unknown_notice", message: "no notice has this 'noticeId'",
                field: "noticeId")
        case ConsentWriteError.noticeForAnotherChannel(let channel):
            self = APIError(
                .unprocessableContent, code: "notice_channel_mismatch",
                message: "the notice is for the \(channel.rawValue) channel, not the one named", field: "channel")
        case ConsentWriteError.purposesNotInNotice(let purposes):
            self = APIError(
                .unprocessableContent, code: "purpose_not_in_notice",
                message: "the notice does not cover \(purposes.joined(separator: ", "))", field: "purposes")
        case ConsentWriteError.unknownPurposes(let purposes), NoticeStoreError.unknownPurposes(let purposes):
            self = APIError(
                .unprocessableContent, code: "unknown_purpose",
                message: "no purpose is named \(purposes.joined(separator: ", ")); see GET /v1/purposes",
                field: "purposes")
        case ConsentLookupError.unknownPurpose(let purpose):
            self = APIError(
                .unprocessableContent, code: "unknown_purpose",
                message: "no purpose is named \(purpose); see GET /v1/purposes", field: "purpose")
        case TemplateStoreError.unknownPurpose(let purpose):
            self = APIError(
                .unprocessableContent, code: "unknown_purpose",
                message: "no purpose is named \(purpose); see GET /v1/purposes", field: "purpose")
        case TemplateStoreError.categoryMismatch(let purpose, let category):
            self = APIError(
                .unprocessableContent, code: "category_mismatch",
                message:
                    "\(purpose) is a \(category.rawValue) purpose; a template names a purpose of its own category",
                field: "purpose")
        case TemplateStoreError.findingsNeedOverride:
            self = APIError(
                .unprocessableContent, code: "lint_findings",
                message:
                    "this utility template has lint findings; approve it only with \"override\": true and a \"reason\"",
                field: "override")
        case TemplateStoreError.notFound:
            self = APIError.notFound("no template has this id")
        case PurposeStoreError.builtIn(let key):
            self = APIError(
                .conflict, code: "built_in_purpose", message: "\(key) is a built-in purpose and cannot be redefined")
        case OptOutReviewError.notFound:
            self = APIError.notFound("no opt-out review has this id")
        case OptOutReviewError.alreadyResolved(let resolution):
            self = APIError(
                .conflict, code: "review_resolved", message: "this review was already resolved (\(resolution.rawValue))"
            )
        case PurposeStoreError.categoryInUse(let key):
            self = APIError(
                .unprocessableContent, code: "purpose_in_use",
                message:
                    "\(key) is named by a consent, notice or template; its category cannot change (define a new purpose)",
                field: "category")
        case ConsentWriteError.suppressed:
            self = APIError(
                .unprocessableContent, code: "suppressed",
                message:
                    "this person objected or was erased after withdrawing; an imported opt-in cannot bring them back, only one they give themselves",
                field: "provenance.method")
        case SubjectRightsError.subjectNotFound:
            self = APIError(
                .notFound, code: "subject_not_found", message: "no data is held about this subject on this channel")
        case SubjectRightsError.requestNotFound:
            self = APIError(.notFound, code: "request_not_found", message: "no request has this id")
        case SubjectRightsError.requestNotPending(let status):
            self = APIError(
                .conflict, code: "request_not_pending",
                message: "the request is already \(status.rawValue); only a pending one can change")
        case IdempotencyError.keyReused:
            self = APIError(
                .unprocessableContent, code: "idempotency_key_reused",
                message: "this Idempotency-Key was used for a different request; use a new key for a new request",
                field: "Idempotency-Key")
        case IdempotencyError.replayWithheld:
            self = APIError(
                .conflict, code: "idempotent_replay_withheld",
                message:
                    "this Idempotency-Key opened a consent session; its token is sent once and never stored, so it cannot be replayed: open a new session with a new key",
                field: "Idempotency-Key")
        case ConsentSessionError.notFound:
            self = APIError(.notFound, code: "consent_session_not_found", message: "no consent session has this token")
        case ConsentSessionError.gone:
            self = APIError(
                .gone, code: "consent_session_gone",
                message: "this consent session was used or has expired; the shop must open a new one")
        case is ConsentSessionOriginRefused:
            self = APIError(
                .forbidden, code: "origin_not_allowed",
                message: "this page's origin is not among the tenant's allowed origins (PUT /v1/settings/origins)")
        case WebhookEndpointError.notFound:
            self = APIError.notFound("no webhook endpoint has this id")
        case WebhookEndpointError.deliveryNotFound:
            self = APIError.notFound("this endpoint has no delivery with this id")
        case WebhookEndpointError.targetRefused(let refusal):
            self = APIError(
                .unprocessableContent, code: "webhook_url_refused", message: "the URL \(refusal)", field: "url")
        case WebhookEndpointError.unknownEvents(let names):
            self = APIError(
                .unprocessableContent, code: "unknown_event",
                message: (names.isEmpty
                    ? "name at least one event type"
                    : "no event type is named "
                        + names.prefix(5).joined(separator: ", ")) + "; the types are "
                    + WebhookEventType.subscribable.map(\.rawValue).joined(separator: ", "),
                field: "events")
        case WebhookEndpointError.tooManyEndpoints(let limit):
            self = APIError(
                .conflict, code: "too_many_endpoints",
                message: "a tenant may have at most \(limit) webhook endpoints; delete one first")
        case let exceeded as DeadlineExceeded:
            self = .requestTimeout(after: exceeded.after)
        case let error where DatabaseErrors.isBusy(error):
            self = APIError(
                .serviceUnavailable, code: "database_busy",
                message: "the database could not take this request in time (a lock held elsewhere, or a statement "
                    + "past its limit); nothing was written, so retry it",
                headers: [.retryAfter: "1"])
        case let error where DatabaseErrors.isUnavailable(error):
            self = APIError(
                .serviceUnavailable, code: "database_unavailable",
                message: "the database did not answer; a write may still have taken effect, so retry it with the same "
                    + "Idempotency-Key",
                headers: [.retryAfter: "1"])
        default:
            return nil
        }
    }
}
