import Foundation

/// The free entry-point window: a conversation the person starts from a click-to-WhatsApp ad or a Page button (the
/// inbound message carries a `referral`) makes every message free for the first 24 hours, and for the 72 hours that
/// the business's first reply within them starts. The service sees no outbound messages, so it models the window as
/// the rule's hours from the inbound message itself: it ends no later than the platform's, provided the business
/// replied within the first 24 hours (see docs/messaging-rules.md for the case where it did not).
public struct EntryPointWindow: Sendable, Equatable {
    public let openedAt: Date?
    public let hours: Int?

    public init(openedAt: Date?, hours: Int?) {
        self.openedAt = openedAt
        self.hours = hours
    }

    public var closesAt: Date? {
        guard let openedAt, let hours else { return nil }
        return openedAt.addingTimeInterval(TimeInterval(hours) * 3600)
    }

    /// From the inbound message (inclusive) for the rule's hours (exclusive); never under a rule without the window.
    public func isOpen(at instant: Date) -> Bool {
        guard let openedAt, let closesAt else { return false }
        return openedAt <= instant && instant < closesAt
    }
}
