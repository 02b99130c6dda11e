import Foundation

/// A PostgreSQL connection URL as libpq and most tools write it:
/// `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require][&host=/socket/dir]`.
/// A `host` query parameter (or a percent-encoded path as host) selects a Unix-domain socket directory.
public struct DatabaseURL: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        case tcp(host: String, port: Int)
        /// The socket file itself, `<directory>/.s.PGSQL.<port>`, as the server names it.
        case unixSocket(path: String)
    }

    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(endpoint: Endpoint, username: String, password: String?, database: String, tls: TLSMode) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let problem: String
        public var description: String { problem }
    }

    public init(parsing text: String) throws(Invalid) {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql"
        else {
            throw Invalid(problem: "is not a postgres:// URL")
        }
        let query = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, last in last })
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw Invalid(problem: "has a port outside 1-65535") }

        let host = query["host"] ?? components.percentEncodedHost.flatMap { $0.removingPercentEncoding } ?? ""
        if host.hasPrefix("/") {
            endpoint = .unixSocket(path: "\(host)/.s.PGSQL.\(port)")
        } else if !host.isEmpty {
            endpoint = .tcp(host: host, port: port)
        } else {
            throw Invalid(problem: "names no host")
        }

        guard let user = components.user, !user.isEmpty else { throw Invalid(problem: "names no user") }
        username = user
        password = components.password
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else { throw Invalid(problem: "names no database") }
        database = path

        // A remote server without an sslmode gets `require`: `prefer` falls back to plaintext when anyone on the path
        // answers the TLS request with "no", which strips encryption silently (issue 21, finding 8).
        let mode = query["sslmode"] ?? (endpoint.isLocal ? "disable" : "require")
        switch mode {
        case "disable": tls = .disable
        case "allow", "prefer": tls = .prefer
        case "require", "verify-ca", "verify-full": tls = .require
        default: throw Invalid(problem: "has an unknown sslmode '\(mode)'")
        }
    }

    /// The same URL with another user and no password: how the runtime role reaches the database the owner migrated.
    public func with(username: String, password: String? = nil, database: String? = nil) -> DatabaseURL {
        DatabaseURL(
            endpoint: endpoint, username: username, password: password, database: database ?? self.database, tls: tls)
    }

    /// A URL string that libpq tools (psql, pg_dump, pgbench) accept.
    public var urlString: String {
        var components = URLComponents()
        components.scheme = "postgres"
        components.user = username
        components.password = password
        components.path = "/" + database
        var items: [URLQueryItem] = []
        switch endpoint {
        case .tcp(let host, let port):
            components.host = host
            components.port = port
        case .unixSocket(let path):
            let directory = (path as NSString).deletingLastPathComponent
            let port = path.split(separator: ".").last.map(String.init) ?? "5432"
            components.host = "localhost"
            components.port = Int(port)
            items.append(URLQueryItem(name: "host", value: directory))
        }
        items.append(URLQueryItem(name: "sslmode", value: tls.rawValue))
        components.queryItems = items
        return components.string ?? ""
    }

    /// For messages and logs: never the password.
    public var redacted: String {
        var copy = self
        copy.password = password == nil ? nil : "redacted"
        return copy.urlString
    }
}

extension DatabaseURL.Endpoint {
    var isLocal: Bool {
        switch self {
        case .unixSocket: true
        case .tcp(let host, _): host == "localhost" || host == "127.0.0.1" || host == "::1"
        }
    }
}
