import ConsentCore
import Foundation
import HummingbirdTesting
import NIOCore

// The API's answers as the tests read them: `reply.decoded(T.self)` throws when a body is not a `T`, so a reply
// that does not parse fails its test instead of reading as empty. Times stay text: the tests compare them as the
// contract writes them. Only the members some test reads are declared; a member declared without `?` must be there.

/// A consent as an opt-in, a decision or an interaction's confirmations list it.
struct ConsentReply: Decodable, Equatable {
    /// None for a purpose an import could not record (`suppressed`).
    let id: String?
    let purpose: String
    let status: String
    let grantedAt: String?
}

/// `POST /v1/consents`.
struct OptInReply: Decodable {
    let consents: [ConsentReply]
    let consistencyToken: String
}

/// `POST /v1/consents/{id}/confirm`: the consent, with the token of the change when the call made one.
struct ConfirmationReply: Decodable {
    let id: String
    let purpose: String
    let status: String
    let grantedAt: String?
    let consistencyToken: String?
}

struct RevokedReply: Decodable {
    let id: String
    let purpose: String
    let revokedAt: String
}

/// `POST /v1/revocations`.
struct RevocationReply: Decodable {
    let revoked: [RevokedReply]
    let consistencyToken: String
}

struct ServiceWindowReply: Decodable {
    let open: Bool
    let closesAt: String?
}

/// `POST /v1/interactions`.
struct InteractionReply: Decodable {
    let id: String
    let serviceWindow: ServiceWindowReply
    let revoked: [RevokedReply]
    let confirmed: [ConsentReply]
    let consistencyToken: String
}

/// `POST /v1/checks`.
struct CheckReply: Decodable {
    let allowed: Bool
    let reason: String
    let category: String
    let consentId: String?
    let grantedAt: String?
    let revokedAt: String?
    let predictedError: PredictedErrorReply?
    /// The WhatsApp fields: all present on WhatsApp (`pricingCategory` as null when refused), all absent elsewhere.
    let whatsapp: WhatsAppPart?

    struct PredictedErrorReply: Decodable, Equatable {
        let code: String
        let message: String
    }

    struct WhatsAppPart: Decodable {
        let serviceWindow: ServiceWindowReply
        let freeEntryPoint: ServiceWindowReply
        let billable: Bool
        let pricingCategory: String?
        let pricingRule: String
    }

    enum Key: String, CodingKey {
        case allowed, reason, category, consentId, grantedAt, revokedAt, predictedError, serviceWindow, freeEntryPoint,
            billable, pricingCategory, pricingRule
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        allowed = try container.decode(Bool.self, forKey: .allowed)
        reason = try container.decode(String.self, forKey: .reason)
        category = try container.decode(String.self, forKey: .category)
        consentId = try container.decodeIfPresent(String.self, forKey: .consentId)
        grantedAt = try container.decodeIfPresent(String.self, forKey: .grantedAt)
        revokedAt = try container.decodeIfPresent(String.self, forKey: .revokedAt)
        predictedError = try container.decodeIfPresent(PredictedErrorReply.self, forKey: .predictedError)
        let platformKeys: [Key] = [.serviceWindow, .freeEntryPoint, .billable, .pricingCategory, .pricingRule]
        let present = platformKeys.filter(container.contains)
        switch present.count {
        case 0: whatsapp = nil
        case platformKeys.count:
            whatsapp = WhatsAppPart(
                serviceWindow: try container.decode(ServiceWindowReply.self, forKey: .serviceWindow),
                freeEntryPoint: try container.decode(ServiceWindowReply.self, forKey: .freeEntryPoint),
                billable: try container.decode(Bool.self, forKey: .billable),
                pricingCategory: try container.decodeIfPresent(String.self, forKey: .pricingCategory),
                pricingRule: try container.decode(String.self, forKey: .pricingRule))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: present[0], in: container,
                debugDescription: "some WhatsApp fields present, some absent: \(present.map(\.rawValue))")
        }
    }

    /// The WhatsApp half, or a failed test when the answer lacks it.
    var platform: WhatsAppPart {
        get throws {
            guard let whatsapp else { throw MissingWhatsAppFields() }
            return whatsapp
        }
    }

    var serviceWindow: ServiceWindowReply { get throws { try platform.serviceWindow } }
    var billable: Bool { get throws { try platform.billable } }

    struct MissingWhatsAppFields: Error {}
}

/// `POST /v1/checks/batch`.
struct BatchCheckReply: Decodable {
    struct Result: Decodable, Equatable {
        let subject: String
        let allowed: Bool
        let reason: String
        let category: String?
        let billable: Bool?
        let pricingCategory: String?

        init(subject: String, allowed: Bool, reason: String) {
            self.subject = subject
            self.allowed = allowed
            self.reason = reason
            category = nil
            billable = nil
            pricingCategory = nil
        }

        /// Subject, verdict and reason: what most tests compare.
        static func == (lhs: Result, rhs: Result) -> Bool {
            lhs.subject == rhs.subject && lhs.allowed == rhs.allowed && lhs.reason == rhs.reason
        }
    }
    let results: [Result]
}

/// `POST /v1/notices`, `GET /v1/notices/{id}`.
struct NoticeReply: Decodable {
    let id: String
    let channel: String
    let language: String
    let version: Int
    let text: String
    let textSha256: String
    let purposes: [String]
    let createdAt: String
}

/// `GET /v1/notices`.
struct NoticeListReply: Decodable {
    let notices: [NoticeReply]
}

/// `POST /v1/consent-sessions`.
struct ConsentSessionOpenedReply: Decodable {
    let token: String
    let expiresAt: String
}

/// `GET /v1/consent-sessions/{token}`: what the widget shows, without the person's identifier.
struct ConsentSessionReply: Decodable {
    struct Notice: Decodable {
        let id: String
        let text: String
        let language: String
        let purposes: [String]
    }
    let notice: Notice
    let channel: String
    let expiresAt: String
}

/// `POST /v1/consent-sessions/{token}/decision`.
struct DecisionReply: Decodable {
    let accepted: Bool
    let consents: [ConsentReply]
}

/// `POST /v1/subjects/links`.
struct SelfServiceLinkReply: Decodable {
    let url: String
    let expiresAt: String
}

/// `PUT|GET /v1/settings/origins`.
struct OriginsReply: Decodable {
    let origins: [String]
}

/// `POST /v1/webhooks/whatsapp/{tenant}`.
struct WebhookDeliveryReply: Decodable {
    let received: Int
    let duplicates: Int
    let withdrawals: Int
    let confirmations: Int
    let templateChanges: Int
    let consistencyToken: String?
}

/// `GET /v1/reports/consents`.
struct ConsentReportReply: Decodable {
    struct Row: Decodable {
        let purpose: String
        let channel: String
        let granted: Int
        let withdrawn: Int
        let active: Int
    }
    let from: String
    let to: String
    let rows: [Row]
}

/// `POST /v1/subjects/erase`, and a completed erasure request's `erasure`.
struct ErasureReply: Decodable {
    let erased: Bool
    let erasedAt: String
    let subjectFound: Bool
    let suppressed: Bool
}

/// `POST /v1/subjects/export` (and the console's download of it): the members the server tests read. The export
/// tests that check the whole bundle read it as `JSONValue`.
struct ExportReply: Decodable {
    struct Consent: Decodable {
        let id: String
        let purpose: String
        let status: String
        let provenance: Provenance?
    }
    struct Provenance: Decodable {
        let method: String
        let pageUrl: String?
        let userAgent: String?
        let ipAddress: String?
    }
    struct PendingRequest: Decodable {
        let id: String
        let type: String
        let status: String
    }
    let subject: String
    let channel: String
    let consents: [Consent]
    let pendingRequests: [PendingRequest]
}

/// A subject request: `POST /v1/requests`, `GET /v1/requests/{id}`, and inside lists and completions.
struct SubjectRequestReply: Decodable {
    let id: String
    let type: String
    let status: String
    let receivedAt: String
    let dueAt: String
    let overdue: Bool
    let subjectRef: String
    let completedAt: String?
    let completedBy: String?
    let cancelledAt: String?
    let cancelledBy: String?
}

/// `GET /v1/requests`.
struct SubjectRequestListReply: Decodable {
    let requests: [SubjectRequestReply]
}

/// `POST /v1/requests/{id}/complete`: `export` for access and portability (null when nothing is held), `erasure`
/// for erasure.
struct RequestCompletionReply: Decodable {
    let request: SubjectRequestReply
    let outcome: String
    let export: ExportReply?
    let erasure: ErasureReply?
}

/// `POST /v1/requests/{id}/cancel`.
struct RequestCancellationReply: Decodable {
    let request: SubjectRequestReply
}

/// An audit event as the API serves it: the typed members the tests read, and every member as served, since the
/// leaf hash is over exactly those (less `leafHash`).
struct AuditEventReply: Decodable {
    let seq: Int
    let action: String
    let subjectRef: String?
    let leafHash: String
    let members: [String: JSONValue]

    enum Key: String, CodingKey { case seq, action, subjectRef, leafHash }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        seq = try container.decode(Int.self, forKey: .seq)
        action = try container.decode(String.self, forKey: .action)
        subjectRef = try container.decodeIfPresent(String.self, forKey: .subjectRef)
        leafHash = try container.decode(String.self, forKey: .leafHash)
        members = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }
}

/// `GET /v1/audit/events` (JSON): a page, with `next` when there may be more.
struct AuditEventPageReply: Decodable {
    let events: [AuditEventReply]
    let next: Int?
}

/// `GET /v1/audit/proofs/inclusion` and `/consistency`: `hashes` base64.
struct InclusionProofReply: Decodable {
    let seq: Int
    let treeSize: Int
    let hashes: [String]
}

struct ConsistencyProofReply: Decodable {
    let from: Int
    let to: Int
    let hashes: [String]
}

/// `GET /v1/audit/verification`.
struct VerificationReply: Decodable {
    let ok: Bool
    let treeSize: Int
    let eventsChecked: Int
    let firstBadSeq: Int?
    let problem: String?
}

/// The first line of the NDJSON audit report: the checkpoint the events were taken against.
struct AuditReportHeadReply: Decodable {
    struct Checkpoint: Decodable {
        let origin: String
        let treeSize: Int
        let note: String
    }
    let checkpoint: Checkpoint
}

/// A reply whose body is not what the test expected: its status and body, so the failure says what came back.
struct UndecodableReply: Error, CustomStringConvertible {
    let expected: String
    let status: Int
    let body: String
    let underlying: any Error

    var description: String { "expected \(expected), got \(status): \(body.prefix(2_000)) (\(underlying))" }
}

extension TestResponse {
    /// The contract's error body; a response that is not one throws.
    var error: ErrorBody.Detail {
        get throws {
            do {
                return try decoded(ErrorBody.self).error
            } catch {
                throw UndecodableReply(
                    expected: "ErrorBody", status: status.code, body: String(buffer: body), underlying: error)
            }
        }
    }
}
