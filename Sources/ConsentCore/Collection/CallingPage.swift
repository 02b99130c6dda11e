import Foundation

/// The page that calls the widget's routes, as far as CORS is concerned: the `Origin` it sent (none when the
/// caller is not a browser page on another site) and the origins that count as this service's own.
public struct CallingPage: Sendable, Equatable {
    public enum Verdict: Sendable, Equatable {
        /// No `Origin` header: not a cross-site page, and no permission is needed.
        case noOrigin
        /// The header's value, echoed in `Access-Control-Allow-Origin`.
        case allowed(String)
        case refused
    }

    public let origin: String?
    public let ownOrigins: [AllowedOrigin]

    public init(origin: String?, ownOrigins: [AllowedOrigin]) {
        self.origin = origin
        self.ownOrigins = ownOrigins
    }

    /// Whether a page of this origin may call, given the tenant's allowed origins. `requiringOrigin` refuses a
    /// request without an `Origin`: a decision is evidence of what a person did on a page, and a browser always
    /// names the page's origin on a POST, so a decision without one did not come from an allowed page (issue 21,
    /// finding 8: the widget's decision endpoint accepted them from anywhere).
    public func verdict(allowed: [AllowedOrigin], requiringOrigin: Bool = false) -> Verdict {
        guard let origin else { return requiringOrigin ? .refused : .noOrigin }
        guard let parsed = AllowedOrigin(origin) else { return .refused }
        return allowed.contains(parsed) || ownOrigins.contains(parsed) ? .allowed(origin) : .refused
    }
}
