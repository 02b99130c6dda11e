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

public struct OptInResult: SubjectChangeOutcome {
    public let consents: [RecordedConsent]
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
