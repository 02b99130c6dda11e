import Foundation
import Testing

@testable import ConsentCore

/// Every combination of pricing period × purpose category × message type × window × entry point × consent, against
/// an independent statement of the domain brief's rules (its pricing table is transcribed below, not derived from
/// `PricingRulebook.whatsapp`).
@Suite struct ConsentCheckTests {
    static let id = UUID()

    static func utc(_ text: String) -> Date {
        guard let date = RFC3339.parse(text) else { fatalError("bad test date \(text)") }
        return date
    }

    /// The brief's three periods, each at its edges and in its middle.
    enum Period: CaseIterable { case conversationBased, perMessage, utilityPaidInWindow }
    static let instants: [(String, Period)] = [
        ("2024-03-15T12:00:00Z", .conversationBased),
        ("2025-06-30T23:59:59Z", .conversationBased),
        ("2025-07-01T00:00:00Z", .perMessage),
        ("2026-01-10T08:30:00Z", .perMessage),
        ("2026-09-30T23:59:59Z", .perMessage),
        ("2026-10-01T00:00:00Z", .utilityPaidInWindow),
        ("2026-12-01T16:00:00Z", .utilityPaidInWindow),
    ]

    enum ConsentCase: CaseIterable {
        case none, granted, pending, withdrawn
        func state(at now: Date) -> ConsentState {
            switch self {
            case .none: .none
            case .granted: .granted(id: ConsentCheckTests.id, grantedAt: now.addingTimeInterval(-86_400 * 30))
            case .pending: .pending(id: ConsentCheckTests.id)
            case .withdrawn: .withdrawn(id: ConsentCheckTests.id, revokedAt: now.addingTimeInterval(-60))
            }
        }
    }

    /// The last inbound message relative to the send.
    enum WindowCase: CaseIterable {
        case never, openedJustNow, openedAlmostADayAgo, closedExactlyNow, closedLongAgo, inboundAfterTheSend
        func lastInbound(_ now: Date) -> Date? {
            switch self {
            case .never: nil
            case .openedJustNow: now
            case .openedAlmostADayAgo: now.addingTimeInterval(-86_400 + 1)
            case .closedExactlyNow: now.addingTimeInterval(-86_400)
            case .closedLongAgo: now.addingTimeInterval(-86_400 * 7)
            case .inboundAfterTheSend: now.addingTimeInterval(60)
            }
        }
        var isOpen: Bool { self == .openedJustNow || self == .openedAlmostADayAgo }
    }

    /// The last inbound message from an ad relative to the send.
    enum EntryPointCase: CaseIterable {
        case never, openedJustNow, openedAlmostThreeDaysAgo, closedExactlyNow, afterTheSend
        func openedAt(_ now: Date) -> Date? {
            switch self {
            case .never: nil
            case .openedJustNow: now
            case .openedAlmostThreeDaysAgo: now.addingTimeInterval(-72 * 3600 + 1)
            case .closedExactlyNow: now.addingTimeInterval(-72 * 3600)
            case .afterTheSend: now.addingTimeInterval(60)
            }
        }
        var isOpen: Bool { self == .openedJustNow || self == .openedAlmostThreeDaysAgo }
    }

    /// The brief's table: is a delivered message of this kind paid?
    static func briefSaysPaid(_ period: Period, _ category: MessageCategory, windowOpen: Bool) -> Bool {
        switch (period, category) {
        case (_, .service): return period == .utilityPaidInWindow && windowOpen
        case (.conversationBased, _): return !windowOpen
        case (_, .marketing), (_, .authentication): return true
        case (.perMessage, .utility): return !windowOpen
        case (.utilityPaidInWindow, .utility): return true
        }
    }

    /// The check's answer as the brief and the contract state it, written apart from `ConsentCheck`.
    static func expectedRefusal(
        _ type: MessageType, _ category: PurposeCategory, _ consent: ConsentCase, windowOpen: Bool
    )
        -> (CheckReason, PredictedError?)?
    {
        switch (type, consent) {
        case (_, .withdrawn): return (.consentWithdrawn, nil)
        case (.template, .none): return (.noConsent, nil)
        case (.template, .pending): return (.pendingConfirmation, nil)
        case (.template, .granted): return nil
        case (.session, .none) where category == .marketing: return (.noConsent, nil)
        case (.session, .pending) where category == .marketing: return (.pendingConfirmation, nil)
        case (.session, _): return windowOpen ? nil : (.serviceWindowClosed, .outsideWindow)
        }
    }

    @Test(arguments: instants.indices)
    func everyCombinationOnWhatsApp(instant: Int) throws {
        let (text, period) = Self.instants[instant]
        let now = Self.utc(text)
        var checked = 0
        for category in PurposeCategory.allCases {
            // `issue_resolution` has its own rule (below); any other key of the category stands for it here.
            let purpose = "\(category.rawValue)_purpose"
            for type in MessageType.allCases {
                for window in WindowCase.allCases {
                    for entryPoint in EntryPointCase.allCases {
                        for consent in ConsentCase.allCases {
                            let question = try SendQuestion(
                                channel: .whatsapp, messageType: type, purpose: purpose, purposeCategory: category,
                                at: now)
                            let facts = SubjectFacts(
                                consent: consent.state(at: now), lastInboundAt: window.lastInbound(now),
                                entryPointAt: entryPoint.openedAt(now))
                            let decision = ConsentCheck.decide(question, facts: facts)
                            let label = "\(text) \(category) \(type) \(window) \(entryPoint) \(consent)"
                            let messageCategory: MessageCategory =
                                type == .session ? .service : MessageCategory(category)
                            #expect(decision.category == messageCategory, "\(label)")
                            let refusal = Self.expectedRefusal(type, category, consent, windowOpen: window.isOpen)
                            #expect(decision.allowed == (refusal == nil), "\(label)")
                            #expect(
                                decision.reason
                                    == refusal?.0 ?? (type == .session ? .serviceWindowOpen : .consentGranted),
                                "\(label)")
                            #expect(decision.predictedError == refusal?.1, "\(label)")
                            let pricing = try #require(decision.pricing)
                            #expect(pricing.windowOpen == window.isOpen, "\(label)")
                            // No free entry point before per-message pricing, by the brief.
                            let free = entryPoint.isOpen && period != .conversationBased
                            #expect(pricing.entryPointOpen == free, "\(label)")
                            if refusal != nil {
                                #expect(pricing.pricingCategory == nil && !pricing.billable, "\(label)")
                            } else if free {
                                #expect(pricing.pricingCategory == .freeEntryPoint && !pricing.billable, "\(label)")
                            } else {
                                #expect(pricing.pricingCategory == PricingCategory(messageCategory), "\(label)")
                                #expect(
                                    pricing.billable
                                        == Self.briefSaysPaid(period, messageCategory, windowOpen: window.isOpen),
                                    "\(label)")
                            }
                            #expect(decision.billable == pricing.billable)
                            checked += 1
                        }
                    }
                }
            }
        }
        #expect(checked == 3 * 2 * 6 * 5 * 4)
    }

    @Test func eachPeriodAnswersWithItsRuleId() {
        let ids = Self.instants.map { PricingRulebook.whatsapp.rule(at: Self.utc($0.0)).id }
        #expect(
            ids == [
                "whatsapp-2019", "whatsapp-2019", "whatsapp-2025-07", "whatsapp-2025-07", "whatsapp-2025-07",
                "whatsapp-2026-10", "whatsapp-2026-10",
            ])
        #expect(PricingRulebook.whatsapp.rule(at: Date(timeIntervalSince1970: -1)).id == "whatsapp-2019")
    }

    @Test(arguments: [MessageChannel.sms, .email])
    func otherChannelsHaveNoWindowPricingOrPredictedError(channel: MessageChannel) throws {
        let now = Self.utc("2026-12-01T16:00:00Z")
        #expect(throws: SendQuestion.Invalid.sessionNotApplicable(channel)) {
            try SendQuestion(
                channel: channel, messageType: .session, purpose: "marketing", purposeCategory: .marketing, at: now)
        }
        for category in PurposeCategory.allCases {
            for consent in ConsentCase.allCases {
                let question = try SendQuestion(
                    channel: channel, messageType: .template, purpose: "p_\(category)", purposeCategory: category,
                    at: now)
                // A WhatsApp marketing stop and window say nothing about SMS or e-mail.
                let decision = ConsentCheck.decide(
                    question,
                    facts: SubjectFacts(
                        consent: consent.state(at: now), lastInboundAt: nil, entryPointAt: now,
                        marketingStoppedAt: now.addingTimeInterval(-10)))
                #expect(decision.pricing == nil && decision.predictedError == nil && !decision.billable)
                #expect(decision.allowed == (consent == .granted))
            }
        }
    }

    @Test func aMarketingStopHoldsUntilAnOptInCollectedAfterIt() throws {
        let now = Self.utc("2026-12-01T16:00:00Z")
        let stop = now.addingTimeInterval(-3600)
        for type in MessageType.allCases {
            let question = try SendQuestion(
                channel: .whatsapp, messageType: type, purpose: "newsletter", purposeCategory: .marketing, at: now)
            let before = SubjectFacts(
                consent: .granted(id: Self.id, grantedAt: stop.addingTimeInterval(-1)), lastInboundAt: now,
                marketingStoppedAt: stop)
            let stopped = ConsentCheck.decide(question, facts: before)
            #expect(
                !stopped.allowed && stopped.reason == .marketingStopped && stopped.predictedError == .marketingStopped)
            #expect(stopped.pricing?.pricingCategory == nil && !stopped.billable)
            let sameInstant = SubjectFacts(
                consent: .granted(id: Self.id, grantedAt: stop), lastInboundAt: now, marketingStoppedAt: stop)
            #expect(ConsentCheck.decide(question, facts: sameInstant).reason == .marketingStopped)
            let after = SubjectFacts(
                consent: .granted(id: Self.id, grantedAt: stop.addingTimeInterval(1)), lastInboundAt: now,
                marketingStoppedAt: stop)
            #expect(ConsentCheck.decide(question, facts: after).allowed)
            // A withdrawal is the law's refusal and is named first.
            let withdrawn = SubjectFacts(
                consent: .withdrawn(id: Self.id, revokedAt: stop), lastInboundAt: now, marketingStoppedAt: stop)
            #expect(ConsentCheck.decide(question, facts: withdrawn).reason == .consentWithdrawn)
        }
        // What lifts it is when the opt-in was given, not when it was recorded: an old opt-in imported today does not.
        let question = try SendQuestion(
            channel: .whatsapp, messageType: .template, purpose: "marketing", purposeCategory: .marketing, at: now)
        let imported = SubjectFacts(
            consent: .granted(id: Self.id, grantedAt: now), lastInboundAt: nil, marketingStoppedAt: stop,
            consentCollectedAt: stop.addingTimeInterval(-86_400 * 365))
        #expect(ConsentCheck.decide(question, facts: imported).reason == .marketingStopped)
        let givenAfter = SubjectFacts(
            consent: .granted(id: Self.id, grantedAt: stop.addingTimeInterval(-60)), marketingStoppedAt: stop,
            consentCollectedAt: stop.addingTimeInterval(1))
        #expect(ConsentCheck.decide(question, facts: givenAfter).allowed, "a re-confirmation given after the stop")
        // Utility and authentication are not marketing: the stop does not touch them.
        for category in [PurposeCategory.utility, .authentication] {
            let question = try SendQuestion(
                channel: .whatsapp, messageType: .template, purpose: "p", purposeCategory: category, at: now)
            let facts = SubjectFacts(
                consent: .granted(id: Self.id, grantedAt: stop.addingTimeInterval(-60)), marketingStoppedAt: stop)
            #expect(ConsentCheck.decide(question, facts: facts).allowed)
        }
    }

    @Test(arguments: TemplateStatus.allCases)
    func onlyAnApprovedTemplateIsSent(status: TemplateStatus) throws {
        let now = Self.utc("2026-12-01T16:00:00Z")
        let question = try SendQuestion(
            channel: .whatsapp, messageType: .template, purpose: "shipping_update", purposeCategory: .utility,
            templateStatus: status, at: now)
        let granted = SubjectFacts(consent: .granted(id: Self.id, grantedAt: now.addingTimeInterval(-60)))
        let decision = ConsentCheck.decide(question, facts: granted)
        switch status {
        case .approved: #expect(decision.allowed && decision.reason == .consentGranted && decision.billable)
        case .paused:
            #expect(
                !decision.allowed && decision.reason == .templatePaused && decision.predictedError == .templatePaused)
        case .pending, .rejected, .disabled:
            #expect(!decision.allowed && decision.reason == .templateNotApproved)
            #expect(decision.predictedError == .templateNotApproved)
        }
        // Without consent the law's answer comes first, whatever the template's state.
        #expect(ConsentCheck.decide(question, facts: .unknown).reason == .noConsent)
    }

    @Test func issueResolutionNeedsAnEarlierConversationWithinTheLookback() throws {
        let now = Self.utc("2026-12-01T16:00:00Z")
        let policy = SendPolicy.standard
        let question = try SendQuestion(
            channel: .whatsapp, messageType: .template, purpose: Purpose.issueResolution, purposeCategory: .utility,
            at: now)
        let granted = ConsentState.granted(id: Self.id, grantedAt: now.addingTimeInterval(-86_400 * 90))
        let cases: [(Date?, Bool)] = [
            (nil, false),
            (now.addingTimeInterval(-policy.issueResolutionLookback - 1), false),
            (now.addingTimeInterval(-policy.issueResolutionLookback), true),
            (now.addingTimeInterval(-86_400 * 2), true),
            (now, true),
            (now.addingTimeInterval(1), false),
        ]
        for (inbound, allowed) in cases {
            let decision = ConsentCheck.decide(question, facts: SubjectFacts(consent: granted, lastInboundAt: inbound))
            #expect(decision.allowed == allowed, "\(String(describing: inbound))")
            if !allowed { #expect(decision.reason == .noPriorConversation && decision.predictedError == nil) }
        }
        let shorter = SendPolicy(issueResolutionLookback: 86_400)
        let twoDaysAgo = SubjectFacts(consent: granted, lastInboundAt: now.addingTimeInterval(-86_400 * 2))
        #expect(ConsentCheck.decide(question, facts: twoDaysAgo, policy: shorter).reason == .noPriorConversation)
        // On SMS there is no conversation to restart: consent decides.
        let sms = try SendQuestion(
            channel: .sms, messageType: .template, purpose: Purpose.issueResolution, purposeCategory: .utility, at: now)
        #expect(ConsentCheck.decide(sms, facts: SubjectFacts(consent: granted)).allowed)
    }

    @Test func windowClosesTwentyFourHoursAfterTheLastInbound() {
        let now = Self.utc("2026-12-01T16:00:00Z")
        let window = ServiceWindow(lastInboundAt: now)
        #expect(window.closesAt == now.addingTimeInterval(86_400))
        #expect(ServiceWindow(lastInboundAt: nil).closesAt == nil)
        #expect(EntryPointWindow(openedAt: now, hours: 72).closesAt == now.addingTimeInterval(72 * 3600))
        #expect(EntryPointWindow(openedAt: now, hours: nil).closesAt == nil)
        #expect(!EntryPointWindow(openedAt: now, hours: nil).isOpen(at: now))
    }
}

/// The rulebook is data: a deployment adds the platform's next change from a file read at start.
@Suite struct PricingRulebookTests {
    @Test func aDeploymentAddsAFutureRuleFromAFile() throws {
        let file = #"""
            {"rules": [{"id": "whatsapp-2027-04", "effectiveFrom": "2027-04-01T00:00:00Z", "source": "test",
                        "paidInsideWindow": ["marketing"], "paidOutsideWindow": ["marketing", "utility"],
                        "freeEntryPointHours": 48}]}
            """#
        let book = try PricingRulebook.whatsapp.adding(fileContents: Data(file.utf8))
        #expect(book.rules.map(\.id) == ["whatsapp-2019", "whatsapp-2025-07", "whatsapp-2026-10", "whatsapp-2027-04"])
        let before = ConsentCheckTests.utc("2027-03-31T23:59:59Z")
        let after = ConsentCheckTests.utc("2027-04-01T00:00:00Z")
        #expect(book.rule(at: before).id == "whatsapp-2026-10")
        #expect(book.rule(at: after).id == "whatsapp-2027-04")
        let question = try SendQuestion(
            channel: .whatsapp, messageType: .template, purpose: "authentication", purposeCategory: .authentication,
            at: after)
        let facts = SubjectFacts(consent: .granted(id: UUID(), grantedAt: before))
        let decision = ConsentCheck.decide(question, facts: facts, policy: SendPolicy(pricing: book))
        #expect(decision.pricing?.rule.id == "whatsapp-2027-04" && !decision.billable)
        let entry = SubjectFacts(consent: facts.consent, entryPointAt: after.addingTimeInterval(-49 * 3600))
        #expect(
            ConsentCheck.decide(question, facts: entry, policy: SendPolicy(pricing: book)).pricing?.entryPointOpen
                == false)
    }

    @Test func aBrokenFileIsRefusedWithItsReason() {
        let cases: [(String, PricingRulebookError)] = [
            (
                #"{"rules": [{"id": "whatsapp-2019", "effectiveFrom": "2030-01-01T00:00:00Z", "source": "x", "paidInsideWindow": [], "paidOutsideWindow": []}]}"#,
                .duplicateId("whatsapp-2019")
            ),
            (
                #"{"rules": [{"id": "x", "effectiveFrom": "2026-10-01T00:00:00Z", "source": "x", "paidInsideWindow": [], "paidOutsideWindow": []}]}"#,
                .sameEffectiveTime("whatsapp-2026-10", "x")
            ),
            (
                #"{"rules": [{"id": "x", "effectiveFrom": "2030-01-01T00:00:00Z", "source": "x", "paidInsideWindow": [], "paidOutsideWindow": [], "freeEntryPointHours": 0}]}"#,
                .nonPositiveEntryPoint("x")
            ),
        ]
        for (file, error) in cases {
            #expect(throws: error) { try PricingRulebook.whatsapp.adding(fileContents: Data(file.utf8)) }
        }
        for file in [
            #"{"rules": [{"id": "x"}]}"#,
            #"{"rules": [{"id": "x", "effectiveFrom": "2030-01-01T00:00:00Z", "source": "x", "paidInsideWindow": ["sms"], "paidOutsideWindow": []}]}"#,
            "[]",
        ] {
            #expect {
                try PricingRulebook.whatsapp.adding(fileContents: Data(file.utf8))
            } throws: { error in
                if case PricingRulebookError.malformed = error { return true } else { return false }
            }
        }
        #expect(throws: PricingRulebookError.empty) { try PricingRulebook([]) }
    }
}
