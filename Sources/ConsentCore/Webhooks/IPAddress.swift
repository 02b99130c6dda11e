/// An IPv4 (4 bytes) or IPv6 (16 bytes) address, and the part of the network it reaches (RFC 6890's special
/// purpose registries, as far as they matter to a server deciding whether it may connect somewhere for a tenant).
public struct IPAddress: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Dotted-quad IPv4 only (the tests' and the error messages' form); names go through the resolver.
    public init?(ipv4 text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count <= 3, let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        self.bytes = bytes
    }

    public enum Reach: String, Sendable, Equatable {
        case global = "public"
        case loopback
        case privateNetwork = "private"
        case linkLocal = "link-local"
        case sharedAddressSpace = "shared (carrier-grade NAT)"
        case unspecified
        case multicast
        case reserved
    }

    public var reach: Reach {
        if bytes.count == 4 { return Self.reachV4(bytes[0], bytes[1], bytes[2], bytes[3]) }
        let isZeroPrefix = bytes[0..<10].allSatisfy { $0 == 0 }
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses reach the IPv4 address they carry,
        // and so does NAT64's well-known prefix (64:ff9b::/96).
        if isZeroPrefix, bytes[10] == 0xff, bytes[11] == 0xff {
            return Self.reachV4(bytes[12], bytes[13], bytes[14], bytes[15])
        }
        if bytes[0..<12] == [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] {
            return Self.reachV4(bytes[12], bytes[13], bytes[14], bytes[15])
        }
        if isZeroPrefix, bytes[10] == 0, bytes[11] == 0 {
            if bytes[12..<15].allSatisfy({ $0 == 0 }) {
                switch bytes[15] {
                case 0: return .unspecified
                case 1: return .loopback
                default: return .reserved
                }
            }
            return Self.reachV4(bytes[12], bytes[13], bytes[14], bytes[15])
        }
        switch bytes[0] {
        case 0xff: return .multicast
        case 0xfc, 0xfd: return .privateNetwork  // unique local, fc00::/7
        case 0xfe where bytes[1] & 0xc0 == 0x80: return .linkLocal  // fe80::/10
        case 0xfe where bytes[1] & 0xc0 == 0xc0: return .privateNetwork  // site-local, fec0::/10 (deprecated)
        default: break
        }
        // 6to4 (2002::/16) carries an IPv4 address, which it reaches; Teredo (2001::/32), documentation
        // (2001:db8::/32) and benchmarking (2001:2::/48) addresses are no public host.
        if bytes[0] == 0x20, bytes[1] == 0x02 { return Self.reachV4(bytes[2], bytes[3], bytes[4], bytes[5]) }
        if bytes[0] == 0x20, bytes[1] == 0x01 {
            if bytes[2] == 0, bytes[3] == 0 { return .reserved }
            if bytes[2] == 0x0d, bytes[3] == 0xb8 { return .reserved }
            if bytes[2] == 0, bytes[3] == 0x02, bytes[4] == 0, bytes[5] == 0 { return .reserved }
        }
        // Global unicast is 2000::/3; the rest of the space is unassigned or special.
        return bytes[0] & 0xe0 == 0x20 ? .global : .reserved
    }

    private static func reachV4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Reach {
        switch (a, b) {
        case (0, _): return .unspecified
        case (10, _), (172, 16...31), (192, 168): return .privateNetwork
        case (127, _): return .loopback
        case (169, 254): return .linkLocal
        case (100, 64...127): return .sharedAddressSpace
        case (192, 0) where c == 0, (198, 18...19): return .reserved  // IETF protocol assignments, benchmarking
        case (224...239, _): return .multicast
        case (240...255, _): return .reserved
        default: return .global
        }
    }

    public var description: String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
