import ConsentCore
import Foundation
import HTTPTypes
import Hummingbird

/// CORS for the widget's routes, per tenant: a page may call them from the tenant's allowed origins or from this
/// service's own origin (the demo checkout, the self-service page). A request with no `Origin` is not from a
/// browser page on another site and needs no permission.
enum CrossOrigin {
    /// The calling page as the store's origin check sees it.
    static func page(_ request: Request, publicBaseURL: String?) -> CallingPage {
        CallingPage(origin: request.headers[.origin], ownOrigins: ownOrigins(request, publicBaseURL: publicBaseURL))
    }

    static func verdict(_ request: Request, allowed: [AllowedOrigin], publicBaseURL: String?) -> CallingPage.Verdict {
        page(request, publicBaseURL: publicBaseURL).verdict(allowed: allowed)
    }

    static func ownOrigins(_ request: Request, publicBaseURL: String?) -> [AllowedOrigin] {
        if let publicBaseURL { return AllowedOrigin(publicBaseURL).map { [$0] } ?? [] }
        guard let authority = request.head.authority else { return [] }
        return ["http://\(authority)", "https://\(authority)"].compactMap(AllowedOrigin.init)
    }

    /// The headers that let the page read the answer.
    static func headers(_ verdict: CallingPage.Verdict) -> HTTPFields {
        var fields: HTTPFields = [.vary: "Origin"]
        if case .allowed(let origin) = verdict { fields[.accessControlAllowOrigin] = origin }
        return fields
    }

    /// The answer to a preflight: permission for GET and POST with a JSON body, cached by the browser for ten
    /// minutes, or no permission at all.
    static func preflight(_ verdict: CallingPage.Verdict) -> Response {
        var fields = headers(verdict)
        if case .allowed = verdict {
            fields[.accessControlAllowMethods] = "GET, POST"
            fields[.accessControlAllowHeaders] = "Content-Type"
            fields[.accessControlMaxAge] = "600"
        }
        return Response(status: .noContent, headers: fields)
    }
}

extension HTTPField.Name {
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
}
