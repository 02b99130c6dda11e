import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// The writes of the consent lifecycle: opt-ins, withdrawals, inbound interactions and confirmations. Each is one
/// unit of work of the store's (`ConsentLedger`), committed with its audit events and any idempotency record, and
/// answers with a consistency token.
struct ConsentRoutes {
    let database: ConsentDatabase
    let ledger: ConsentLedger

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/consents") { request, context in try await optIn(request, context: context) }
        group.post("/consents/{id}/confirm") { _, context in try await confirm(context: context) }
        group.post("/revocations") { request, context in try await revoke(request, context: context) }
        group.post("/interactions") { request, context in try await interaction(request, context: context) }
    }

    // MARK: opt-in

    struct OptInBody: Codable {
        struct ProvenanceBody: Codable {
            let pageUrl: String
            let collectedAt: Date
            let method: String
            let userAgent: String?
            let ipAddress: String?
        }
        let subject: String
        let channel: String
        let purposes: [String]
        let noticeId: String
        let provenance: ProvenanceBody
    }

    struct ConsentView: Encodable {
        let id: String?
        let purpose: String
        /// `granted`, `pending`, `superseded`, or, for an opt-in only, `suppressed` (no consent, so no id).
        let status: String
        let grantedAt: Date?

        init(_ consent: RecordedConsent) {
            id = consent.id.lowercased
            purpose = consent.purpose
            status = consent.status.rawValue
            grantedAt = consent.grantedAt
        }

        init(_ outcome: OptInPurposeOutcome) {
            switch outcome {
            case .recorded(let consent): self.init(consent)
            case .suppressed(let purpose): self.init(id: nil, purpose: purpose, status: "suppressed", grantedAt: nil)
            }
        }

        private init(id: String?, purpose: String, status: String, grantedAt: Date?) {
            self.id = id
            self.purpose = purpose
            self.status = status
            self.grantedAt = grantedAt
        }
    }

    struct OptInView: Encodable {
        let consents: [ConsentView]
        let consistencyToken: String
    }

    func optIn(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let (body, claim) = try await request.decodeWrite(
            OptInBody.self, operation: "POST /v1/consents", subjectFields: ["subject"], context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        let purposes = try Input.purposes(body.purposes)
        let noticeId = try Input.uuid(body.noticeId, field: "noticeId")
        let method: CollectionMethod = try Input.oneOf(body.provenance.method, field: "provenance.method")
        let collectedAt = try Input.pastTime(body.provenance.collectedAt, field: "provenance.collectedAt")
        let provenance: Provenance
        do {
            provenance = try Provenance.validated(
                pageUrl: body.provenance.pageUrl, userAgent: body.provenance.userAgent,
                ipAddress: body.provenance.ipAddress)
        } catch {
            switch error {
            case .pageUrl(let why): throw APIError.invalid("provenance.pageUrl", "'provenance.pageUrl' \(why)")
            case .userAgent(let why): throw APIError.invalid("provenance.userAgent", "'provenance.userAgent' \(why)")
            case .ipAddress(let why): throw APIError.invalid("provenance.ipAddress", "'provenance.ipAddress' \(why)")
            }
        }
        let optIn = OptIn(
            subject: subject, purposes: purposes, noticeId: noticeId, method: method, collectedAt: collectedAt,
            provenance: provenance)
        return try await database.commit(
            ledger.optIn(optIn, caller: caller), idempotency: claim?.naming([subject]), logger: context.logger
        ) { result in
            try StoredResponse.json(
                .created,
                OptInView(consents: result.outcomes.map(ConsentView.init), consistencyToken: result.token.description))
        }.httpResponse
    }

    // MARK: withdrawal

    struct RevocationBody: Codable {
        let subject: String
        let channel: String
        let purposes: [String]?
        let source: String?
    }

    struct RevokedView: Encodable {
        let id: String
        let purpose: String
        let revokedAt: Date

        init(_ consent: RevokedConsent) {
            id = consent.id.lowercased
            purpose = consent.purpose
            revokedAt = consent.revokedAt
        }
    }

    struct RevocationView: Encodable {
        let revoked: [RevokedView]
        let consistencyToken: String
    }

    func revoke(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let (body, claim) = try await request.decodeWrite(
            RevocationBody.self, operation: "POST /v1/revocations", subjectFields: ["subject"], context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        let purposes = try body.purposes.map { try Input.purposes($0) }
        let source: RevocationSource = try body.source.map { try Input.oneOf($0, field: "source") } ?? .api
        return try await database.commit(
            ledger.revoke(subject, purposes: purposes, source: source, caller: caller),
            idempotency: claim?.naming([subject]),
            logger: context.logger
        ) { result in
            try StoredResponse.json(
                .ok,
                RevocationView(
                    revoked: result.revoked.map(RevokedView.init), consistencyToken: result.token.description))
        }.httpResponse
    }

    // MARK: interactions

    struct InteractionBody: Codable {
        let subject: String
        let channel: String
        let direction: String
        let occurredAt: Date
        let text: String?
        /// `ad`: the person wrote from a click-to-WhatsApp ad or a Page button, which opens the free entry point.
        let entryPoint: String?
    }

    struct InteractionView: Encodable {
        let id: String
        let serviceWindow: ServiceWindowView
        let revoked: [RevokedView]
        /// Double opt-ins that a confirmation reply ("YES", "SÌ", "JA", …) confirmed.
        let confirmed: [ConsentView]
        /// `keyword`, `phrase`, `button` or `platform` when the message said stop; `null` (always present) if not.
        let optOut: OptOutKind?
        /// The DPO review that an opt-out phrase opened.
        let optOutReviewId: String?
        let consistencyToken: String

        enum CodingKeys: String, CodingKey {
            case id, serviceWindow, revoked, confirmed, optOut, optOutReviewId, consistencyToken
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(serviceWindow, forKey: .serviceWindow)
            try container.encode(revoked, forKey: .revoked)
            try container.encode(confirmed, forKey: .confirmed)
            try container.encode(optOut, forKey: .optOut)
            try container.encodeIfPresent(optOutReviewId, forKey: .optOutReviewId)
            try container.encode(consistencyToken, forKey: .consistencyToken)
        }
    }

    static let maxMessageLength = 4096

    func interaction(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        let (body, claim) = try await request.decodeWrite(
            InteractionBody.self, operation: "POST /v1/interactions", subjectFields: ["subject"], context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        guard body.direction == "inbound" else {
            throw APIError.invalid(
                "direction", "'direction' must be inbound: only the person's messages open the window")
        }
        let occurredAt = try Input.pastTime(body.occurredAt, field: "occurredAt")
        let fromAd = try Input.entryPoint(body.entryPoint, channel: channel)
        if let text = body.text, text.unicodeScalars.count > Self.maxMessageLength {
            throw APIError.invalid("text", "'text' must be at most \(Self.maxMessageLength) characters")
        }
        return try await database.commit(
            ledger.interaction(from: subject, occurredAt: occurredAt, text: body.text, fromAd: fromAd, caller: caller),
            idempotency: claim?.naming([subject]), logger: context.logger
        ) { result in
            try StoredResponse.json(
                .created,
                InteractionView(
                    id: result.interactionId.lowercased, serviceWindow: ServiceWindowView(result.window, now: Date()),
                    revoked: result.revoked.map(RevokedView.init), confirmed: result.confirmed.map(ConsentView.init),
                    optOut: result.optOut, optOutReviewId: result.reviewId?.lowercased,
                    consistencyToken: result.token.description))
        }.httpResponse
    }

    // MARK: double opt-in confirmation

    /// The consent as `ConsentView`, with the token of the change when this call made one.
    struct ConfirmedView: Encodable {
        let consent: ConsentView
        let consistencyToken: String?

        func encode(to encoder: any Encoder) throws {
            try consent.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encodeIfPresent(consistencyToken, forKey: .consistencyToken)
        }

        enum Key: CodingKey { case consistencyToken }
    }

    /// Confirms a pending double opt-in. Confirming a granted one again answers it unchanged; a withdrawn one is
    /// 409 and one past its confirmation time is 410 (the person must be asked again).
    func confirm(context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .consentWrite)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw APIError(.notFound, code: "consent_not_found", message: "no consent has this id")
        }
        switch try await database.commit(ledger.confirm(consentId: id, caller: caller), logger: context.logger) {
        case .confirmed(let consent, let change):
            return try JSONResponse.encoding(
                ConfirmedView(
                    consent: ConsentView(consent),
                    consistencyToken: ConsistencyToken(position: change.position).description))
        case .alreadyGranted(let consent):
            return try JSONResponse.encoding(ConfirmedView(consent: ConsentView(consent), consistencyToken: nil))
        case .withdrawn:
            throw APIError(
                .conflict, code: "consent_withdrawn", message: "this consent was withdrawn; it cannot be confirmed")
        case .expired:
            throw APIError(
                .gone, code: "confirmation_expired",
                message: "this double opt-in was not confirmed in time; the person must be asked again")
        case .notFound:
            throw APIError(.notFound, code: "consent_not_found", message: "no consent has this id")
        }
    }
}

/// `{"open", "closesAt"?}`: `closesAt` is given whenever the person has written, even if that time has passed.
struct ServiceWindowView: Encodable {
    let open: Bool
    let closesAt: Date?

    init(_ window: ServiceWindow, now: Date) {
        open = window.isOpen(at: now)
        closesAt = window.closesAt
    }
}
