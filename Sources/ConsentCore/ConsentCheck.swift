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
    /// Free-form: only inside the 24-hour customer-care window.
    case session
}

public enum CheckReason: String, Sendable, Codable, CaseIterable {
    case consentGranted = "consent_granted"
    case noConsent = "no_consent"
    case consentWithdrawn = "consent_withdrawn"
    case pendingConfirmation = "pending_confirmation"
    case serviceWindowOpen = "service_window_open"
    case serviceWindowClosed = "service_window_closed"
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

public struct CheckDecision: Sendable, Equatable {
    public let allowed: Bool
    public let reason: CheckReason
    /// A template sent outside the window is paid per message.
    public let billable: Bool
}

/// May this message be sent now? A pure function of the consent, the window, the message type and the time.
public enum ConsentCheck {
    public static func decide(consent: ConsentState, window: ServiceWindow, messageType: MessageType, now: Date)
        -> CheckDecision
    {
        let windowOpen = window.isOpen(at: now)
        switch messageType {
        case .template:
            switch consent {
            case .granted:
                return CheckDecision(allowed: true, reason: .consentGranted, billable: !windowOpen)
            case .none:
                return CheckDecision(allowed: false, reason: .noConsent, billable: false)
            case .pending:
                return CheckDecision(allowed: false, reason: .pendingConfirmation, billable: false)
            case .withdrawn:
                return CheckDecision(allowed: false, reason: .consentWithdrawn, billable: false)
            }
        case .session:
            // A withdrawal stops every future send for that purpose, replies included: the person who just
            // replied STOP has opened the window with that very message.
            if case .withdrawn = consent {
                return CheckDecision(allowed: false, reason: .consentWithdrawn, billable: false)
            }
            return windowOpen
                ? CheckDecision(allowed: true, reason: .serviceWindowOpen, billable: false)
                : CheckDecision(allowed: false, reason: .serviceWindowClosed, billable: false)
        }
    }
}
