import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The outermost middleware: every error leaves in the contract's shape, every response carries its request id,
/// and one log line per request records method, route template, status and duration. The route template, not
/// the path, is logged, and never the body or query: personal data travels only in bodies (contract).
struct ErrorShapingMiddleware: RouterMiddleware {
    typealias Context = ConsentRequestContext
    var routes: RouteTable? = nil

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            var shaped = shape(error, context: context)
            // The router's own 404 (the handlers throw APIError): no route for this method, maybe one for another.
            if error is HTTPError, shaped.status == .notFound, let allowed = routes?.methods(for: request.uri.path),
                !allowed.isEmpty
            {
                shaped = APIError(
                    .methodNotAllowed, code: "method_not_allowed",
                    message: "this route takes \(allowed.joined(separator: ", ")), not \(request.method.rawValue)",
                    headers: [.allow: allowed.joined(separator: ", ")])
            }
            response = try shaped.response(from: request, context: context)
        }
        response.headers[.requestID] = context.id
        let elapsed = ContinuousClock.now - started
        context.logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)",
                "route": "\(context.endpointPath ?? "unmatched")",
                "status": "\(response.status.code)",
                "ms": "\(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)",
            ])
        return response
    }

    func shape(_ error: any Error, context: Context) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as any HTTPResponseError:
            return APIError.from(error)
        case let error where APIError(domain: error) != nil:
            return APIError(domain: error)!
        default:
            // The type and a database error's SQLSTATE, not the message: database errors can quote the values
            // that failed; a SQLSTATE is a class of failure and names nothing.
            var metadata: Logger.Metadata = ["type": "\(String(reflecting: type(of: error)))"]
            if let state = DatabaseErrors.sqlState(error) { metadata["sqlState"] = "\(state)" }
            context.logger.error("unhandled error", metadata: metadata)
            return APIError(
                .internalServerError, code: "internal_error",
                message: "the service failed to answer; quote request id \(context.id) when reporting it")
        }
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-Id")!
}
