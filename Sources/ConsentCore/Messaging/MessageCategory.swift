/// What kind of message is sent, as the platform categorises it: a template's category, or `service` for a
/// free-form message inside the customer-care window (domain brief, "Template categories").
public enum MessageCategory: String, Sendable, Codable, CaseIterable, Hashable {
    case utility
    case marketing
    case authentication
    case service

    /// A template's category is its purpose's.
    public init(_ category: PurposeCategory) {
        switch category {
        case .utility: self = .utility
        case .marketing: self = .marketing
        case .authentication: self = .authentication
        }
    }
}

/// How the platform bills a delivered message: by its category, or not at all inside a free entry-point window,
/// which the platform bills as `referral_conversion` at no charge.
public enum PricingCategory: String, Sendable, Codable, CaseIterable {
    case marketing
    case utility
    case authentication
    case service
    case freeEntryPoint = "free_entry_point"

    public init(_ category: MessageCategory) {
        switch category {
        case .utility: self = .utility
        case .marketing: self = .marketing
        case .authentication: self = .authentication
        case .service: self = .service
        }
    }
}

/// A template's review state on the platform (`message_template_status_update`). Only an approved template can be
/// sent.
public enum TemplateStatus: String, Sendable, Codable, CaseIterable {
    case pending
    case approved
    case rejected
    case paused
    case disabled
}
