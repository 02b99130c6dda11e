import Foundation

/// Where an endpoint's deliveries go, as parsed from the URL an admin gave: https (or http, for a local test
/// receiver only), a host, a port, and the path and query sent as given. User information and fragments are
/// refused: the one would put credentials in a stored URL, the other is never sent and so only misleads.
public struct WebhookTarget: Sendable, Equatable {
    public enum Scheme: String, Sendable { case https, http }

    public let url: String
    public let scheme: Scheme
    /// Lower-cased; an IPv6 literal without its brackets.
    public let host: String
    public let port: Int

    public init(parsing text: String) throws(WebhookTargetRefusal) {
        guard text.count <= 2048, !text.contains(where: { $0.isWhitespace }),
            let components = URLComponents(string: text), let schemeText = components.scheme?.lowercased()
        else { throw .notAURL }
        guard let scheme = Scheme(rawValue: schemeText) else { throw .scheme(schemeText) }
        guard components.user == nil, components.password == nil else { throw .credentials }
        guard components.fragment == nil else { throw .fragment }
        guard var host = components.host?.lowercased(), !host.isEmpty else { throw .notAURL }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        guard !host.isEmpty else { throw .notAURL }
        let port = components.port ?? (scheme == .https ? 443 : 80)
        guard (1...65535).contains(port) else { throw .notAURL }
        self.url = text
        self.scheme = scheme
        self.host = host
        self.port = port
    }
}

/// Which targets `serve` sends to: public addresses over https only, unless the operator lets a local test
/// receiver in (`CONSENTD_WEBHOOK_ALLOW_LOOPBACK=true`, always on under `consentd dev`), which allows loopback
/// addresses, over http too. Private, link-local, shared, multicast and reserved addresses are refused always: a
/// webhook URL is a request the server makes on a tenant's say-so, and must not reach the operator's own network
/// (server-side request forgery).
public struct WebhookTargetPolicy: Sendable, Equatable {
    public var allowLoopback: Bool

    public init(allowLoopback: Bool = false) {
        self.allowLoopback = allowLoopback
    }

    /// What can be refused before resolving the host: plain http where loopback is not allowed.
    public func checkScheme(_ target: WebhookTarget) throws(WebhookTargetRefusal) {
        if target.scheme == .http, !allowLoopback { throw .plainHTTP }
    }

    /// Checks the target against the addresses its host resolved to (every one: a name that resolves to a public
    /// and a private address is refused, since the connection may use either).
    public func check(_ target: WebhookTarget, resolvedTo addresses: [IPAddress]) throws(WebhookTargetRefusal) {
        guard !addresses.isEmpty else { throw .unresolved(target.host) }
        for address in addresses {
            switch address.reach {
            case .global: continue
            case .loopback where allowLoopback: continue
            case let reach: throw .address(target.host, reach)
            }
        }
        if target.scheme == .http {
            guard allowLoopback, addresses.allSatisfy({ $0.reach == .loopback }) else { throw .plainHTTP }
        }
    }
}

public enum WebhookTargetRefusal: Error, Equatable, CustomStringConvertible {
    case notAURL
    case scheme(String)
    case credentials
    case fragment
    case plainHTTP
    case unresolved(String)
    case address(String, IPAddress.Reach)

    public var description: String {
        switch self {
        case .notAURL: "is not an absolute URL with a host"
        case .scheme(let scheme): "uses \(scheme.isEmpty ? "no scheme" : scheme): only https is accepted"
        case .credentials: "carries user information: put no credentials in a webhook URL"
        case .fragment: "has a fragment, which is never sent"
        case .plainHTTP:
            "uses http: only https is accepted (http to a loopback test receiver needs CONSENTD_WEBHOOK_ALLOW_LOOPBACK)"
        case .unresolved(let host): "names a host that does not resolve (\(host))"
        case .address(let host, let reach):
            "names a host (\(host)) that resolves to a \(reach.rawValue) address, which webhooks may not reach"
        }
    }
}
