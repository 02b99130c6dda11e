import Foundation

/// How long personal data that is no longer needed is kept (Art. 5(1)(e), storage limitation).
public struct RetentionPolicy: Sendable, Equatable {
    /// Inbound messages: the window needs one day; the rest is support history.
    public var interactionDays: Int
    /// A withdrawn consent's provenance (page, user agent, IP) is the proof that consent was given while it was;
    /// it is kept for the period in which that may have to be shown (Art. 7(1)), counted from the withdrawal.
    public var withdrawnProvenanceYears: Int
    /// Idempotency records: how long a retry replays the first response.
    public var idempotencyDays: Int

    public static let `default` = RetentionPolicy(interactionDays: 90, withdrawnProvenanceYears: 3, idempotencyDays: 7)

    public init(interactionDays: Int, withdrawnProvenanceYears: Int, idempotencyDays: Int) {
        self.interactionDays = interactionDays
        self.withdrawnProvenanceYears = withdrawnProvenanceYears
        self.idempotencyDays = idempotencyDays
    }
}

/// What the service keeps and for how long, beyond the data-protection model's fixed rules.
public struct SubjectRightsPolicy: Sendable, Equatable {
    /// Keep a keyed hash of people erased after withdrawing or objecting, and refuse imported opt-ins for them.
    public var suppression: Bool
    public var retention: RetentionPolicy

    public static let `default` = SubjectRightsPolicy(suppression: true, retention: .default)

    public init(suppression: Bool, retention: RetentionPolicy) {
        self.suppression = suppression
        self.retention = retention
    }
}
