import Foundation

/// What an objection (GDPR Art. 21) covers: direct marketing (every purpose of category `marketing`, on the
/// channel, now and for purposes defined later), or every purpose.
public enum ObjectionScope: String, Sendable, Codable, CaseIterable {
    case marketing
    case all

    /// The category a stop for this scope covers; nil for every purpose.
    public var category: PurposeCategory? { self == .marketing ? .marketing : nil }
}

/// How the objection reached the controller, kept in its audit event.
public enum ObjectionSource: String, Sendable, Codable, CaseIterable {
    case api
    case dpo
    case email
    case phone
    case letter
    case selfService = "self_service"
}
