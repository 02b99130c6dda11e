import Hummingbird
import Synchronization

/// The methods each route template answers, filled once the router is built, so that a request for a known path
/// with a method it does not take is 405 with `Allow`, not 404.
final class RouteTable: Sendable {
    struct Route: Sendable {
        let segments: [Substring]
        let method: HTTPRequest.Method
    }

    let routes = Mutex<[Route]>([])

    func fill(_ templates: [(path: String, method: HTTPRequest.Method)]) {
        routes.withLock { routes in
            routes = templates.map { Route(segments: Self.segments($0.path), method: $0.method) }
        }
    }

    /// The methods served at `path`, sorted; empty when no template matches it. Where templates overlap
    /// (`/v1/templates/lint` and `/v1/templates/{id}`), the router takes the one with a literal segment where the
    /// other has a parameter, so only the most literal templates that match answer for the path.
    func methods(for path: String) -> [String] {
        let parts = Self.segments(path)
        let matching = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == parts.count
                    && zip(route.segments, parts).allSatisfy { template, part in
                        template.hasPrefix("{") || template == part
                    }
            }
        }
        func literals(_ route: Route) -> [Bool] { route.segments.map { !$0.hasPrefix("{") } }
        guard let best = matching.map(literals).max(by: { $0.lexicographicallyPrecedes($1) { !$0 && $1 } }) else {
            return []
        }
        return Array(Set(matching.filter { literals($0) == best }.map(\.method.rawValue))).sorted()
    }

    static func segments(_ path: String) -> [Substring] {
        path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
    }
}
