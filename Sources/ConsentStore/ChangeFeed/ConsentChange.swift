import ConsentCore
import Foundation

/// A committed change to one subject's consent state: the subject by tenant, channel and blind index (a keyed hash,
/// never the identifier) and the change's position, which writes hand back as consistency tokens. Each is a row of
/// `consent_change_log`, written in the change's transaction, that every instance's `ConsentChangeListener` reads.
public struct ConsentChange: Sendable, Equatable {
    /// The NOTIFY channel that wakes listeners (payload-free) and carries API key revocations (`KeyRevocation`).
    public static let channel = "consent_changes"

    public let key: ConsentStateCache.Key
    public let position: Int64

    public init(key: ConsentStateCache.Key, position: Int64) {
        self.key = key
        self.position = position
    }

    /// How the write functions are told the subject (`app_change_position`, migrations 0007 and 0009): `<tenant>
    /// <channel> <hex blind index> `, the position to follow.
    public static func payloadPrefix(_ key: ConsentStateCache.Key) -> String {
        "\(key.tenantId.lowercased) \(key.channel.rawValue) \(key.blindIndex.hexString) "
    }
}

/// One row of the change log as a listener applies it: a subject's consent state changed, or a tenant's catalogue
/// (the categories of its purposes) did, which no single subject's cached state carries.
public enum FeedChange: Sendable, Equatable {
    case subject(ConsentChange)
    case catalogue(tenantId: UUID, position: Int64)

    public var position: Int64 {
        switch self {
        case .subject(let change): change.position
        case .catalogue(_, let position): position
        }
    }
}
