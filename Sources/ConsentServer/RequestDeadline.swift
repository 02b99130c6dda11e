import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// Answers 503 when a request has not been answered within `timeout`: a pool waiting for a database that does not
/// answer, or a client trickling its body, must not hold a caller (or a connection) forever. A write cut off this
/// way may still commit, which is why the answer points at the Idempotency-Key: the retry returns what happened.
///
/// The deadline runs the request in a task of its own, and that hop costs a check more than its answer does (the
/// server-side p99 of a cached check went from 0.3 ms to 2 ms). So the check routes, named in `untimedPaths`, are
/// not run under it: a cached answer waits for nothing, their one wait on the database has its own deadline
/// (`ConsentLookup`), and their body has been read within the deadline before this runs (`BodyBufferingMiddleware`).
struct RequestDeadlineMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let timeout: Duration
    var untimedPaths: Set<String> = []

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // Only their POSTs: a page or a list at the same path (`GET /console/imports`) keeps the deadline.
        if request.method == .post, untimedPaths.contains(request.uri.path) { return try await next(request, context) }
        // withDeadline awaits the task it runs `next` in before it returns, so `next` is never called after
        // this frame ends: it does not really escape. The deadline cancels it; the pool's wait for a connection
        // and the body's stream both end on cancellation. DeadlineExceeded becomes the 503 in APIError(domain:).
        return try await withoutActuallyEscaping(next) { next in
            let call = UncheckedNext(call: next)
            return try await withDeadline(timeout) { try await call.call(request, context) }
        }
    }
}

extension APIError {
    static func requestTimeout(after timeout: Duration) -> APIError {
        APIError(
            .serviceUnavailable, code: "request_timeout",
            message: "the request was not answered within \(timeout.components.seconds) s; a write may still have "
                + "taken effect, so retry it with the same Idempotency-Key",
            headers: [.retryAfter: "1"])
    }
}

/// The router's continuation, which is not declared Sendable but is only called from the one task withDeadline runs.
private struct UncheckedNext: @unchecked Sendable {
    let call: (Request, ConsentRequestContext) async throws -> Response
}
