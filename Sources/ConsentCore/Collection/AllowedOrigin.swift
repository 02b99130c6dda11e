import Foundation

/// A web origin (`scheme://host[:port]`) as browsers send it in the `Origin` header: what a tenant allows to call
/// the widget's routes from its pages.
public struct AllowedOrigin: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Lower case, default ports dropped: `https://shop.example`, `http://127.0.0.1:8080`.
    public let text: String

    public static let maxLength = 253 + 20

    /// Nil unless `text` is an http(s) origin with a host and nothing after it (no path, query, user or fragment).
    public init?(_ text: String) {
        guard (1...Self.maxLength).contains(text.utf8.count), !text.contains(where: { $0.isWhitespace }),
            let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host?.lowercased(), !host.isEmpty,
            components.path.isEmpty, components.query == nil, components.fragment == nil, components.user == nil,
            components.password == nil
        else { return nil }
        let hostAllowed = host.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-.[]:".unicodeScalars.contains($0)
        }
        guard hostAllowed else { return nil }
        var port = ""
        if let number = components.port {
            guard (1...65_535).contains(number) else { return nil }
            if !(scheme == "http" && number == 80 || scheme == "https" && number == 443) { port = ":\(number)" }
        }
        self.text = "\(scheme)://\(host)\(port)"
    }

    public var description: String { text }
    public static func < (lhs: AllowedOrigin, rhs: AllowedOrigin) -> Bool { lhs.text < rhs.text }
}
