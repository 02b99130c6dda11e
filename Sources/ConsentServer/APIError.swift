import ConsentCore
import Foundation
import Hummingbird

/// Every error the API returns: `{"error": {"code", "message", "field"?}}` with its status.
public struct APIError: Error, HTTPResponseError, Sendable, Equatable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let field: String?
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers
    }

    public static func unauthenticated(_ message: String) -> APIError {
        APIError(.unauthorized, code: "unauthenticated", message: message, headers: [.wwwAuthenticate: "Bearer"])
    }

    public static func forbidden(_ scope: Scope) -> APIError {
        APIError(.forbidden, code: "forbidden", message: "this API key lacks the '\(scope.rawValue)' scope")
    }

    public static func notFound(_ message: String = "no such resource") -> APIError {
        APIError(.notFound, code: "not_found", message: message)
    }

    public static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.unprocessableContent, code: "invalid_field", message: message, field: field)
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
            let field: String?
        }
        let error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        try JSONResponse.encoding(
            Body(error: .init(code: code, message: message, field: field)), status: status, headers: headers)
    }
}

extension APIError {
    /// Errors raised by the framework (unknown route, oversized body) in the contract's shape.
    static func from(_ error: any HTTPResponseError) -> APIError {
        let detail = (error as? HTTPError)?.body
        let headers = (error as? HTTPError)?.headers ?? [:]
        let (code, message): (String, String) =
            switch error.status {
            case .notFound: ("not_found", "no such route")
            case .contentTooLarge:
                ("payload_too_large", "the request body exceeds \(ConsentRequestContext.maxBodyBytes) bytes")
            case .badRequest: ("bad_request", detail ?? "the request is malformed")
            case .methodNotAllowed: ("method_not_allowed", "this route does not accept that method")
            case .unsupportedMediaType: ("unsupported_media_type", detail ?? "send application/json")
            default:
                (
                    error.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"),
                    detail ?? error.status.reasonPhrase
                )
            }
        return APIError(error.status, code: code, message: message, headers: headers)
    }
}
