import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// Answers 503 when a request has not been answered within `timeout`: a pool waiting for a database that does not
/// answer, or a client trickling its body, must not hold a caller (or a connection) forever. A write cut off this
/// way may still commit, which is why the answer points at the Idempotency-Key: the retry returns what happened.
struct RequestDeadlineMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let timeout: Duration

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            // The task group inside withDeadline awaits its children before it returns, so `next` is never
            // called after this frame ends: it does not really escape. The deadline cancels it; the pool's wait
            // for a connection and the body's stream both end on cancellation.
            return try await withoutActuallyEscaping(next) { next in
                let call = UncheckedNext(call: next)
                return try await withDeadline(timeout) { try await call.call(request, context) }
            }
        } catch is DeadlineExceeded {
            throw APIError(
                .serviceUnavailable, code: "request_timeout",
                message: "the request was not answered within \(timeout.components.seconds) s; a write may still have "
                    + "taken effect, so retry it with the same Idempotency-Key",
                headers: [.retryAfter: "1"])
        }
    }
}

/// The router's continuation, which is not declared Sendable but is only called from the one child task.
private struct UncheckedNext: @unchecked Sendable {
    let call: (Request, ConsentRequestContext) async throws -> Response
}
