import ConsentCore
import Foundation
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Resolves a webhook target's host to every address it names, as the connection would (getaddrinfo, on NIO's
/// blocking-I/O pool), so that `WebhookTargetPolicy` judges the addresses and not the spelling: `localhost`,
/// `2130706433`, `0x7f.1` and a name whose DNS points at 10.0.0.1 are all what they resolve to.
public struct WebhookAddressResolver: Sendable {
    public init() {}

    public func addresses(of host: String) async throws -> [IPAddress] {
        try await NIOThreadPool.singleton.runIfActive { Self.resolve(host) }
    }

    /// Checks a target as `serve` will send to it: refused if any address it resolves to is off limits.
    public func check(_ target: WebhookTarget, policy: WebhookTargetPolicy) async throws {
        try policy.checkScheme(target)
        try policy.check(target, resolvedTo: try await addresses(of: target.host))
    }

    private static func resolve(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let socketAddress = entry.pointee.ai_addr {
                switch Int32(socketAddress.pointee.sa_family) {
                case AF_INET:
                    socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin_addr
                        let bytes = withUnsafeBytes(of: &address) { Array($0) }
                        if let ip = IPAddress(bytes: bytes) { addresses.append(ip) }
                    }
                case AF_INET6:
                    socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var address = pointer.pointee.sin6_addr
                        let bytes = withUnsafeBytes(of: &address) { Array($0) }
                        if let ip = IPAddress(bytes: bytes) { addresses.append(ip) }
                    }
                default: break
                }
            }
            cursor = entry.pointee.ai_next
        }
        var unique: [IPAddress] = []
        for address in addresses where !unique.contains(address) { unique.append(address) }
        return unique
    }
}
