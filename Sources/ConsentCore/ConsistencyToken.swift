/// The position of a consent-state change, handed to the writer so that a later check can ask to reflect at
/// least that write (read-your-writes across instances and caches). Opaque to clients: `ct1_<position>`.
public struct ConsistencyToken: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let position: Int64

    public init(position: Int64) { self.position = position }

    public init?(parsing text: String) {
        guard text.hasPrefix("ct1_"), let position = Int64(text.dropFirst(4)), position > 0,
            text.count <= 24, !text.dropFirst(4).hasPrefix("+")
        else { return nil }
        self.position = position
    }

    public var description: String { "ct1_\(position)" }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.position < rhs.position }
}
