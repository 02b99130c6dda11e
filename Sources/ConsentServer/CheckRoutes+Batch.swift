import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// `POST /v1/checks/batch`: up to 10,000 people, one purpose, one round trip at most.
extension CheckRoutes {
    struct BatchBody: Decodable {
        let channel: String
        let purpose: String?
        let template: TemplateRef?
        let subjects: [String]
        let messageType: String?
        let consistencyToken: String?
        let sendAt: String?
    }

    struct BatchResult {
        let subject: String
        let allowed: Bool
        let reason: String
        let category: String
        /// WhatsApp only: whether it is paid, and how it is billed (nil when refused).
        let pricing: (billable: Bool, category: String?)?
    }

    /// Written by hand (`JSONWriter`), keys in the shared encoder's (sorted) order.
    struct BatchView: ResponseGenerator {
        let results: [BatchResult]

        func response(from request: Request, context: some RequestContext) throws -> Response {
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json())
            )
        }

        func json() -> ByteBuffer {
            var json = ByteBuffer()
            json.reserveCapacity(32 + results.count * 128)
            json.writeStaticString(#"{"results":["#)
            for (n, result) in results.enumerated() {
                if n > 0 { json.writeStaticString(",") }
                json.writeStaticString(result.allowed ? #"{"allowed":true"# : #"{"allowed":false"#)
                if let pricing = result.pricing {
                    json.writeStaticString(pricing.billable ? #","billable":true"# : #","billable":false"#)
                }
                json.writeStaticString(#","category":"#)
                JSONWriter.writeString(result.category, to: &json)
                if let pricing = result.pricing {
                    json.writeStaticString(#","pricingCategory":"#)
                    JSONWriter.writeStringOrNull(pricing.category, to: &json)
                }
                json.writeStaticString(#","reason":"#)
                JSONWriter.writeString(result.reason, to: &json)
                json.writeStaticString(#","subject":"#)
                JSONWriter.writeString(result.subject, to: &json)
                json.writeStaticString("}")
            }
            json.writeStaticString("]}")
            return json
        }
    }

    func batch(_ request: Request, context: ConsentRequestContext) async throws -> BatchView {
        let caller = try context.caller(requiring: .consentCheck)
        let body = try await request.decodeJSON(BatchBody.self, context: context)
        let channel = try Input.channel(body.channel)
        let messageType = try Input.messageType(body.messageType, channel: channel)
        let now = clock()
        let sendAt = try Input.sendAt(body.sendAt, now: now)
        let token = try Input.consistencyToken(body.consistencyToken)
        guard !body.subjects.isEmpty else { throw APIError.invalid("subjects", "'subjects' must not be empty") }
        guard body.subjects.count <= Self.maxBatch else {
            throw APIError(
                .unprocessableContent, code: "too_many_subjects",
                message: "a batch holds at most \(Self.maxBatch) subjects; split the list", field: "subjects")
        }
        var subjects: [SubjectIdentifier] = []
        subjects.reserveCapacity(body.subjects.count)
        for (index, raw) in body.subjects.enumerated() {
            subjects.append(try Input.subject(raw, channel: channel, field: "subjects[\(index)]"))
        }
        let (question, states) = try await ask(
            about: subjects, channel: channel, purpose: body.purpose, template: body.template,
            messageType: messageType, sendAt: sendAt, token: token, tenantId: caller.tenantId, context: context)
        var counts: [CheckReason: Int] = [:]
        let results = zip(body.subjects, states).map { raw, state in
            let decision = ConsentCheck.decide(question, facts: state?.facts ?? .unknown, policy: policy)
            counts[decision.reason, default: 0] += 1
            return BatchResult(
                subject: raw, allowed: decision.allowed, reason: decision.reason.rawValue,
                category: decision.category.rawValue,
                pricing: decision.pricing.map { ($0.billable, $0.pricingCategory?.rawValue) })
        }
        for (reason, count) in counts { metrics.recordDecision(reason, count: count) }
        return BatchView(results: results)
    }
}
