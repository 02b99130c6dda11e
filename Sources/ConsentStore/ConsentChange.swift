import ConsentCore
import Foundation

/// A committed change to one subject's consent state, as PostgreSQL NOTIFY carries it to every instance's cache.
/// The payload names the subject by tenant, channel and blind index (a keyed hash, never the identifier) and gives
/// the change's position: `<tenant> <channel> <hex blind index> <position>`. NOTIFY is transactional, so listeners
/// hear of a change exactly when it commits.
public struct ConsentChange: Sendable, Equatable {
    public static let channel = "consent_changes"

    public let key: ConsentStateCache.Key
    public let position: Int64

    public init(key: ConsentStateCache.Key, position: Int64) {
        self.key = key
        self.position = position
    }

    public var payload: String { Self.payloadPrefix(key) + String(position) }

    /// Everything before the position, so that SQL can append the position it has just taken.
    public static func payloadPrefix(_ key: ConsentStateCache.Key) -> String {
        "\(key.tenantId.lowercased) \(key.channel.rawValue) \(key.blindIndex.hexString) "
    }

    public init?(payload: String) {
        let parts = payload.split(separator: " ")
        guard parts.count == 4, let tenant = UUID(uuidString: String(parts[0])),
            let channel = MessageChannel(rawValue: String(parts[1])), let index = [UInt8](hex: String(parts[2])),
            index.count == 32, let position = Int64(parts[3])
        else { return nil }
        self.init(key: ConsentStateCache.Key(tenantId: tenant, channel: channel, blindIndex: index), position: position)
    }
}
