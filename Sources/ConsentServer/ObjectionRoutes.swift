import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `POST /v1/objections` (consent:write or dpo): a person objects (GDPR Art. 21) to marketing or to every message,
/// under each identity they gave. One unit of work of the store's (`ConsentLedger.object`).
struct ObjectionRoutes {
    let database: ConsentDatabase
    let ledger: ConsentLedger

    /// One person's identities: a handful, never a list of people (that is an import's job).
    static let maximumIdentities = 10

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/objections") { request, context in try await object(request, context: context) }
    }

    struct Identity: Codable {
        let subject: String
        let channel: String
    }

    struct ObjectionBody: Codable {
        let subjects: [Identity]
        let scope: String
        let source: String?
        /// When the person objected, if earlier than now (a letter, a call).
        let occurredAt: Date?
    }

    struct RevokedView: Encodable {
        let channel: String
        let purpose: String
        let id: String
        let revokedAt: Date
    }

    struct ObjectionView: Encodable {
        let id: String
        let revoked: [RevokedView]
        let consistencyToken: String

        init(_ result: ObjectionResult) {
            id = result.id.lowercased
            revoked = result.revoked.map {
                RevokedView(
                    channel: $0.channel.rawValue, purpose: $0.consent.purpose, id: $0.consent.id.lowercased,
                    revokedAt: $0.consent.revokedAt)
            }
            consistencyToken = result.token.description
        }
    }

    func object(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller()
        guard caller.has(.consentWrite) || caller.has(.dpo) else { throw APIError.forbidden(.consentWrite) }
        let (body, claim) = try await request.decodeWrite(
            ObjectionBody.self, operation: "POST /v1/objections", subjectFields: ["subjects"], context: context)
        guard !body.subjects.isEmpty, body.subjects.count <= Self.maximumIdentities else {
            throw APIError.invalid(
                "subjects", "'subjects' must list between 1 and \(Self.maximumIdentities) identities of one person")
        }
        var subjects: [SubjectIdentifier] = []
        for (index, identity) in body.subjects.enumerated() {
            let channel: MessageChannel = try Input.oneOf(identity.channel, field: "subjects[\(index)].channel")
            let subject = try Input.subject(identity.subject, channel: channel, field: "subjects[\(index)].subject")
            if !subjects.contains(subject) { subjects.append(subject) }
        }
        let scope: ObjectionScope = try Input.oneOf(body.scope, field: "scope")
        let source: ObjectionSource =
            try body.source.map { try Input.oneOf($0, field: "source") } ?? (caller.has(.dpo) ? .dpo : .api)
        // Within the allowed skew a time may lie ahead of ours; the objection is never dated after it reached us.
        let now = Date()
        let occurredAt = min(try body.occurredAt.map { try Input.pastTime($0, field: "occurredAt") } ?? now, now)
        let objection = Objection(subjects: subjects, scope: scope, source: source, occurredAt: occurredAt)
        return try await database.commit(
            ledger.object(objection, caller: caller), idempotency: claim?.naming(subjects), logger: context.logger
        ) { result in
            try StoredResponse.json(.ok, ObjectionView(result))
        }.httpResponse
    }
}
