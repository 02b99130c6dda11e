import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

/// Reads every request's body in full, within the request deadline, before anything else looks at the request.
///
/// Two ways to trickle a body for ever existed (issue 21, finding 8). The check routes run outside the request
/// deadline (for speed), so their body read had none. And every route that answers before reading its body (a
/// missing key, a refused scope, a key lookup past its deadline) left the body to Hummingbird, which reads the
/// rest after the response to reach the next request, with no deadline at all; only the idle timeout, which each
/// byte resets. Here the body is read first, with the read registered in `BodyReadWatch`, whose sweep closes the
/// connection of a body still arriving past the deadline; the request then goes on with its body in memory. The
/// bodies are small (at most `ConsentRequestContext.maxBodyBytes`) and every route that takes one reads it whole
/// anyway; the one exception is an import's upload, which `ImportRoutes` streams under a watch of its own. A body over the limit is refused (413), and its read stays watched so that a connection still sending
/// it is closed at the deadline.
struct BodyBufferingMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let watch: BodyReadWatch
    let timeout: Duration

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil)
        else { return try await next(request, context) }
        // An import's file (up to 1 GiB, from the API or the console's form) is read as it streams, each piece within
        // the deadline (`ImportRoutes`).
        if request.method == .post && ImportRoutes.streamedPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        let id = watch.watch(context.channel, for: timeout)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        if watch.end(id) { throw DeadlineExceeded(after: timeout) }
        var request = request
        request.body = RequestBody(buffer: buffer)
        return try await next(request, context)
    }
}
