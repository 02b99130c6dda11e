import Foundation
import Testing

@testable import ConsentCore

/// Every combination of consent state × window state × message type, against an independent statement of the rules.
@Suite struct ConsentCheckTests {
    static let now = Date(timeIntervalSince1970: 1_790_000_000)
    static let id = UUID()

    enum ConsentCase: CaseIterable {
        case none, granted, pending, withdrawn
        var state: ConsentState {
            switch self {
            case .none: .none
            case .granted:
                .granted(id: ConsentCheckTests.id, grantedAt: ConsentCheckTests.now.addingTimeInterval(-86_400 * 30))
            case .pending: .pending(id: ConsentCheckTests.id)
            case .withdrawn:
                .withdrawn(id: ConsentCheckTests.id, revokedAt: ConsentCheckTests.now.addingTimeInterval(-60))
            }
        }
    }

    enum WindowCase: CaseIterable {
        case never, openedJustNow, openedAlmostADayAgo, closedExactlyNow, closedLongAgo, inboundInTheFuture
        var window: ServiceWindow {
            let now = ConsentCheckTests.now
            return switch self {
            case .never: ServiceWindow(lastInboundAt: nil)
            case .openedJustNow: ServiceWindow(lastInboundAt: now)
            case .openedAlmostADayAgo: ServiceWindow(lastInboundAt: now.addingTimeInterval(-ServiceWindow.length + 1))
            case .closedExactlyNow: ServiceWindow(lastInboundAt: now.addingTimeInterval(-ServiceWindow.length))
            case .closedLongAgo: ServiceWindow(lastInboundAt: now.addingTimeInterval(-86_400 * 7))
            case .inboundInTheFuture: ServiceWindow(lastInboundAt: now.addingTimeInterval(60))
            }
        }
        var isOpen: Bool { self == .openedJustNow || self == .openedAlmostADayAgo }
    }

    @Test(arguments: ConsentCase.allCases, WindowCase.allCases)
    func everyCombination(consent: ConsentCase, window: WindowCase) {
        #expect(window.window.isOpen(at: Self.now) == window.isOpen)
        for type in MessageType.allCases {
            let decision = ConsentCheck.decide(
                consent: consent.state, window: window.window, messageType: type, now: Self.now)
            let expected: CheckDecision
            switch (type, consent) {
            case (.template, .granted):
                expected = CheckDecision(allowed: true, reason: .consentGranted, billable: !window.isOpen)
            case (.template, .none):
                expected = CheckDecision(allowed: false, reason: .noConsent, billable: false)
            case (.template, .pending):
                expected = CheckDecision(allowed: false, reason: .pendingConfirmation, billable: false)
            case (_, .withdrawn):
                expected = CheckDecision(allowed: false, reason: .consentWithdrawn, billable: false)
            case (.session, _):
                expected = CheckDecision(
                    allowed: window.isOpen, reason: window.isOpen ? .serviceWindowOpen : .serviceWindowClosed,
                    billable: false)
            }
            #expect(decision == expected, "\(type) \(consent) \(window)")
        }
    }

    @Test func windowClosesTwentyFourHoursAfterTheLastInbound() {
        let window = ServiceWindow(lastInboundAt: Self.now)
        #expect(window.closesAt == Self.now.addingTimeInterval(86_400))
        #expect(ServiceWindow(lastInboundAt: nil).closesAt == nil)
    }
}
