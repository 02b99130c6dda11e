import ConsentCore
import Foundation

/// An opt-in as the API received it, validated and normalised.
public struct OptIn: Sendable {
    public let subject: SubjectIdentifier
    public let purposes: [String]
    public let noticeId: UUID
    public let method: CollectionMethod
    public let collectedAt: Date
    public let provenance: Provenance

    public init(
        subject: SubjectIdentifier, purposes: [String], noticeId: UUID, method: CollectionMethod, collectedAt: Date,
        provenance: Provenance
    ) {
        self.subject = subject
        self.purposes = purposes
        self.noticeId = noticeId
        self.method = method
        self.collectedAt = collectedAt
        self.provenance = provenance
    }
}

public struct RecordedConsent: Sendable, Equatable {
    public let id: UUID
    public let purpose: String
    public let status: ConsentStatus
    public let grantedAt: Date?
}

public struct RevokedConsent: Sendable, Equatable {
    public let id: UUID
    public let purpose: String
    public let revokedAt: Date
}

/// A write that changed one subject's consent state, with the change's position: the client's consistency token.
public protocol SubjectChangeOutcome: ConsentStateChanging {
    var change: ConsentChange { get }
}

extension SubjectChangeOutcome {
    public var changes: [ConsentChange] { [change] }
    public var token: ConsistencyToken { ConsistencyToken(position: change.position) }
}

/// What an opt-in did for one purpose it named.
public enum OptInPurposeOutcome: Sendable, Equatable {
    /// A consent row: granted, pending, or superseded (collected before a later stop, kept as evidence).
    case recorded(RecordedConsent)
    /// An import for a purpose the person objected to: nothing recorded.
    case suppressed(purpose: String)

    public var purpose: String {
        switch self {
        case .recorded(let consent): consent.purpose
        case .suppressed(let purpose): purpose
        }
    }
}

public struct OptInResult: SubjectChangeOutcome {
    /// Per purpose, in the order the opt-in named them.
    public let outcomes: [OptInPurposeOutcome]
    /// The consent rows this opt-in recorded or found in force (superseded ones included).
    public var consents: [RecordedConsent] {
        outcomes.compactMap { if case .recorded(let consent) = $0 { consent } else { nil } }
    }
    /// The collection this opt-in recorded: its notice, method and provenance.
    public let collectionId: UUID
    public let change: ConsentChange
}

public struct RevocationResult: SubjectChangeOutcome {
    public let revoked: [RevokedConsent]
    public let change: ConsentChange
}

public struct InteractionResult: SubjectChangeOutcome {
    public let interactionId: UUID
    public let window: ServiceWindow
    public let revoked: [RevokedConsent]
    /// Double opt-ins that this reply confirmed.
    public let confirmed: [RecordedConsent]
    /// How the message said stop, if it did.
    public let optOut: OptOutKind?
    /// The DPO review an opt-out phrase opened.
    public let reviewId: UUID?
    public let change: ConsentChange
}

/// `POST /v1/consents/{id}/confirm`'s outcomes.
public enum ConfirmOutcome: ConsentStateChanging, Equatable {
    case confirmed(RecordedConsent, ConsentChange)
    /// Already granted: confirming again changes nothing.
    case alreadyGranted(RecordedConsent)
    case withdrawn
    case expired
    case notFound

    public var changes: [ConsentChange] {
        if case .confirmed(_, let change) = self { return [change] }
        return []
    }
}

public enum ConsentWriteError: Error, Equatable {
    case noticeNotFound
    case noticeForAnotherChannel(MessageChannel)
    case purposesNotInNotice([String])
    case unknownPurposes([String])
    /// An imported opt-in for a person on the suppression list (erased after withdrawing or objecting).
    case suppressed
}
