import Foundation

/// The state of one subject's consent to one purpose on one channel, as far as a check needs it.
public enum ConsentState: Sendable, Equatable {
    case none
    case granted(id: UUID, grantedAt: Date)
    /// Recorded by double opt-in and not yet confirmed.
    case pending(id: UUID)
    case withdrawn(id: UUID, revokedAt: Date)
}

public enum MessageType: String, Sendable, Codable, CaseIterable {
    /// A pre-approved notification: needs consent for its purpose.
    case template
    /// Free-form: only inside the 24-hour customer-care window, and only on WhatsApp.
    case session
}

public enum CheckReason: String, Sendable, Codable, CaseIterable {
    case consentGranted = "consent_granted"
    case noConsent = "no_consent"
    case consentWithdrawn = "consent_withdrawn"
    case pendingConfirmation = "pending_confirmation"
    case serviceWindowOpen = "service_window_open"
    case serviceWindowClosed = "service_window_closed"
    case templateNotApproved = "template_not_approved"
    case templatePaused = "template_paused"
    case marketingStopped = "marketing_stopped"
    case noPriorConversation = "no_prior_conversation"
}

/// The customer-care window: open for 24 hours after the person's last inbound message.
public struct ServiceWindow: Sendable, Equatable {
    public static let length: TimeInterval = 24 * 60 * 60
    public let lastInboundAt: Date?

    public init(lastInboundAt: Date?) { self.lastInboundAt = lastInboundAt }

    public var closesAt: Date? { lastInboundAt.map { $0.addingTimeInterval(Self.length) } }

    /// Open from the inbound message's time (inclusive) until 24 hours later (exclusive).
    public func isOpen(at now: Date) -> Bool {
        guard let lastInboundAt, let closesAt else { return false }
        return lastInboundAt <= now && now < closesAt
    }
}

/// May this message be sent, and what will it cost? A pure function of the question, what the ledger knows of the
/// person and the deployment's policy; `docs/messaging-rules.md` is its table. The law's refusals come first (no
/// consent, withdrawn, pending), then the platform's (a marketing stop, the template's state, no earlier
/// conversation, a closed window), so that the reason a sender sees is the one a DPO must act on.
public enum ConsentCheck {
    public static func decide(_ question: SendQuestion, facts: SubjectFacts, policy: SendPolicy = .standard)
        -> SendDecision
    {
        let category: MessageCategory =
            question.messageType == .session ? .service : MessageCategory(question.purposeCategory)
        let window = ServiceWindow(lastInboundAt: facts.lastInboundAt)
        let refusal = refusal(question, facts: facts, window: window, policy: policy)
        guard question.channel == .whatsapp else {
            return SendDecision(
                allowed: refusal == nil, reason: refusal?.reason ?? .consentGranted, category: category, pricing: nil,
                predictedError: nil)
        }
        let rule = policy.pricing.rule(at: question.at)
        let windowOpen = window.isOpen(at: question.at)
        let entryPoint = EntryPointWindow(openedAt: facts.entryPointAt, hours: rule.freeEntryPointHours)
        let entryPointOpen = entryPoint.isOpen(at: question.at)
        let pricingCategory: PricingCategory? =
            refusal != nil ? nil : entryPointOpen ? .freeEntryPoint : PricingCategory(category)
        let billable = refusal == nil && !entryPointOpen && rule.isPaid(category, windowOpen: windowOpen)
        let pricing = PlatformPricing(
            window: window, windowOpen: windowOpen, entryPoint: entryPoint, entryPointOpen: entryPointOpen,
            pricingCategory: pricingCategory, billable: billable, rule: rule)
        let allowedReason: CheckReason = question.messageType == .session ? .serviceWindowOpen : .consentGranted
        return SendDecision(
            allowed: refusal == nil, reason: refusal?.reason ?? allowedReason, category: category, pricing: pricing,
            predictedError: refusal?.predicted)
    }

    private static func refusal(
        _ question: SendQuestion, facts: SubjectFacts, window: ServiceWindow, policy: SendPolicy
    ) -> (reason: CheckReason, predicted: PredictedError?)? {
        let marketing = question.purposeCategory == .marketing
        // The law: a template needs a granted consent to its purpose; a free-form reply needs one when it markets
        // (electronic marketing needs prior consent, replies included). A withdrawal stops every future send for
        // that purpose, replies too: the person who just replied STOP has opened the window with that very message.
        switch (facts.consent, question.messageType) {
        case (.withdrawn, _): return (.consentWithdrawn, nil)
        case (.none, .template): return (.noConsent, nil)
        case (.pending, .template): return (.pendingConfirmation, nil)
        case (.none, .session) where marketing: return (.noConsent, nil)
        case (.pending, .session) where marketing: return (.pendingConfirmation, nil)
        case (.granted, _), (.none, .session), (.pending, .session): break
        }
        // The platform: a marketing stop holds until an opt-in collected after it (collected, not recorded: an
        // import records old opt-ins today). Without a collection time the grant stands in for it.
        if question.channel == .whatsapp, marketing, let stoppedAt = facts.marketingStoppedAt {
            var givenAfter = false
            if case .granted(_, let grantedAt) = facts.consent {
                givenAfter = (facts.consentCollectedAt ?? grantedAt) > stoppedAt
            }
            if !givenAfter { return (.marketingStopped, .marketingStopped) }
        }
        switch question.templateStatus {
        case nil, .approved: break
        case .paused: return (.templatePaused, .templatePaused)
        case .pending, .rejected, .disabled: return (.templateNotApproved, .templateNotApproved)
        }
        if question.channel == .whatsapp, question.messageType == .template,
            question.purpose == Purpose.issueResolution
        {
            // Restarting a care conversation the window cut off (seed §3.10) needs a conversation to restart.
            let since = question.at.addingTimeInterval(-policy.issueResolutionLookback)
            guard let inbound = facts.lastInboundAt, inbound >= since, inbound <= question.at else {
                return (.noPriorConversation, nil)
            }
        }
        if question.messageType == .session, !window.isOpen(at: question.at) {
            return (.serviceWindowClosed, .outsideWindow)
        }
        return nil
    }
}
