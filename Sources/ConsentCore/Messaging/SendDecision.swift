import Foundation

/// What is being sent: on which channel, which kind of message, for which purpose (and so which category), and,
/// when the sender names one, the template's review state; `at` is when it will be delivered.
public struct SendQuestion: Sendable, Equatable {
    public var channel: MessageChannel
    public var messageType: MessageType
    public var purpose: String
    public var purposeCategory: PurposeCategory
    /// nil when the sender asked by purpose rather than by template.
    public var templateStatus: TemplateStatus?
    public var at: Date

    public enum Invalid: Error, Equatable {
        /// Free-form messages and their window are WhatsApp's; SMS and e-mail send only what was consented to.
        case sessionNotApplicable(MessageChannel)
    }

    /// Refuses a question that has no meaning before anything is looked up.
    public static func validate(channel: MessageChannel, messageType: MessageType) throws(Invalid) {
        guard messageType == .template || channel == .whatsapp else { throw .sessionNotApplicable(channel) }
    }

    public init(
        channel: MessageChannel, messageType: MessageType, purpose: String, purposeCategory: PurposeCategory,
        templateStatus: TemplateStatus? = nil, at: Date
    ) throws(Invalid) {
        try Self.validate(channel: channel, messageType: messageType)
        self.channel = channel
        self.messageType = messageType
        self.purpose = purpose
        self.purposeCategory = purposeCategory
        self.templateStatus = templateStatus
        self.at = at
    }
}

/// What the ledger knows of the person that bears on a send.
public struct SubjectFacts: Sendable, Equatable {
    public var consent: ConsentState
    public var lastInboundAt: Date?
    /// The last inbound message that came from an ad (carried a `referral`, or was posted with `entryPoint: ad`).
    public var entryPointAt: Date?
    /// When the person last stopped marketing in WhatsApp itself (`user_preferences`, or a "Stop promotions" tap).
    public var marketingStoppedAt: Date?
    /// When the person last gave the deciding consent (its newest evidence). Only an opt-in given after a
    /// marketing stop lifts it; an import recorded today of an opt-in given before the stop does not.
    public var consentCollectedAt: Date?

    public init(
        consent: ConsentState, lastInboundAt: Date? = nil, entryPointAt: Date? = nil, marketingStoppedAt: Date? = nil,
        consentCollectedAt: Date? = nil
    ) {
        self.consent = consent
        self.lastInboundAt = lastInboundAt
        self.entryPointAt = entryPointAt
        self.marketingStoppedAt = marketingStoppedAt
        self.consentCollectedAt = consentCollectedAt
    }

    /// Someone the tenant does not know.
    public static let unknown = SubjectFacts(consent: .none)
}

/// Rules of a deployment that are not the platform's: the pricing rulebook in force and how far back an inbound
/// message makes an `issue_resolution` template a follow-up rather than a cold contact.
public struct SendPolicy: Sendable, Equatable {
    public static let defaultIssueResolutionLookback: TimeInterval = 30 * 24 * 3600

    public var pricing: PricingRulebook
    public var issueResolutionLookback: TimeInterval

    public init(
        pricing: PricingRulebook = .whatsapp,
        issueResolutionLookback: TimeInterval = Self.defaultIssueResolutionLookback
    ) {
        self.pricing = pricing
        self.issueResolutionLookback = issueResolutionLookback
    }

    public static let standard = SendPolicy()
}

/// The WhatsApp half of an answer: the windows at the time of sending and how the platform will bill the message.
public struct PlatformPricing: Sendable, Equatable {
    public let window: ServiceWindow
    public let windowOpen: Bool
    public let entryPoint: EntryPointWindow
    public let entryPointOpen: Bool
    /// nil when the send is refused: nothing is delivered, nothing billed.
    public let pricingCategory: PricingCategory?
    public let billable: Bool
    public let rule: PricingRule
}

public struct SendDecision: Sendable, Equatable {
    public let allowed: Bool
    public let reason: CheckReason
    public let category: MessageCategory
    /// WhatsApp only: SMS and e-mail have no customer-care window and no platform pricing.
    public let pricing: PlatformPricing?
    public let predictedError: PredictedError?

    /// Whether the platform will charge for the message; false when refused, and on channels without its pricing.
    public var billable: Bool { pricing?.billable ?? false }
}
