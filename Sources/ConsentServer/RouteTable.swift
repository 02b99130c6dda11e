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

    /// The methods served at `path`, sorted; empty when no template matches it.
    func methods(for path: String) -> [String] {
        let parts = Self.segments(path)
        let matching = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == parts.count
                    && zip(route.segments, parts).allSatisfy { template, part in
                        template.hasPrefix("{") || template == part
                    }
            }.map(\.method.rawValue)
        }
        return Array(Set(matching)).sorted()
    }

    static func segments(_ path: String) -> [Substring] {
        path.split(separator: "?", maxSplits: 1).first.map { $0.split(separator: "/") } ?? []
    }
}
