import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// May this message be sent now, and what will it cost? The store finds the state in one round trip (none when
/// cached); `ConsentCheck.decide` decides by the dated rules.
struct CheckRoutes {
    let lookup: ConsentLookup
    let templates: TemplateResolver
    let metrics: ServiceMetrics
    let policy: SendPolicy
    let clock: @Sendable () -> Date

    static let maxBatch = 10_000

    /// The full paths of the check routes, which the request deadline leaves to `ConsentLookup`'s own.
    static let paths: Set<String> = ["/v1/checks", "/v1/checks/batch"]

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/checks") { request, context in try await check(request, context: context) }
        group.post("/checks/batch") { request, context in try await batch(request, context: context) }
    }

    /// A template by the name and language it was registered with.
    struct TemplateRef: Decodable {
        let name: String
        let language: String
    }

    struct CheckBody: FlatJSONDecodable {
        let subject: String
        let channel: String
        let purpose: String?
        let template: TemplateRef?
        let messageType: String?
        let consistencyToken: String?
        let sendAt: String?

        init?(members: [String: String?]) {
            // A template is an object: a flat body naming one is the general decoder's to read, or to refuse.
            guard members["template"] == nil, case .some(.some(let subject)) = members["subject"],
                case .some(.some(let channel)) = members["channel"],
                case .some(.some(let purpose)) = members["purpose"]
            else { return nil }
            self.subject = subject
            self.channel = channel
            self.purpose = purpose
            template = nil
            messageType = members["messageType"] ?? nil
            consistencyToken = members["consistencyToken"] ?? nil
            sendAt = members["sendAt"] ?? nil
        }
    }

    /// What is sent, by purpose or by template: the purpose whose consent decides, the category it is sent as, and
    /// the template's state when one was named.
    struct SendTarget {
        let consentPurpose: String
        let category: PurposeCategory?
        let templateStatus: TemplateStatus?
    }

    /// The question a check asks, by purpose or by template, and the store's state of each subject (nil for one the
    /// tenant does not know), in the order asked. Reads nothing when the caches hold both.
    func ask(
        about subjects: [SubjectIdentifier], channel: MessageChannel, purpose: String?, template: TemplateRef?,
        messageType: MessageType, sendAt: Date, token: ConsistencyToken?, tenantId: UUID,
        context: ConsentRequestContext
    ) async throws -> (SendQuestion, [SubjectConsentState?]) {
        let target = try await target(
            purpose: purpose, template: template, channel: channel, messageType: messageType, tenantId: tenantId,
            minimumPosition: token?.position ?? 0, context: context)
        let facts = try await lookup.facts(
            of: subjects, channel: channel, purpose: target.consentPurpose, tenantId: tenantId,
            minimumPosition: token?.position ?? 0, logger: context.logger)
        let question = try SendQuestion(
            channel: channel, messageType: messageType, purpose: target.consentPurpose,
            purposeCategory: target.category ?? facts.purposeCategory, templateStatus: target.templateStatus,
            at: sendAt)
        return (question, facts.states)
    }

    func target(
        purpose: String?, template: TemplateRef?, channel: MessageChannel, messageType: MessageType, tenantId: UUID,
        minimumPosition: Int64, context: ConsentRequestContext
    ) async throws -> SendTarget {
        switch (purpose, template) {
        case (let purpose?, nil):
            return SendTarget(consentPurpose: try Input.purpose(purpose), category: nil, templateStatus: nil)
        case (nil, let template?):
            guard channel == .whatsapp else {
                throw APIError.invalid("template", "'template' applies to WhatsApp: name a 'purpose' on other channels")
            }
            guard messageType == .template else {
                throw APIError.invalid("messageType", "a named template is a template message, not a session one")
            }
            guard MessageTemplate.isValidName(template.name), MessageTemplate.isValidLanguage(template.language) else {
                throw APIError.invalid(
                    "template", "'template' needs a template 'name' (a-z, 0-9, _) and a 'language' such as en_US")
            }
            guard
                let resolved = try await templates.resolve(
                    name: template.name, language: template.language, tenantId: tenantId,
                    minimumPosition: minimumPosition, logger: context.logger)
            else {
                throw APIError(
                    .unprocessableContent, code: "unknown_template",
                    message: "no template has this name and language; see GET /v1/templates", field: "template")
            }
            return SendTarget(
                consentPurpose: resolved.consentPurpose, category: resolved.category, templateStatus: resolved.status)
        case (nil, nil):
            throw APIError.invalid("purpose", "name a 'purpose' or a 'template'")
        case (.some, .some):
            throw APIError.invalid("template", "name a 'purpose' or a 'template', not both")
        }
    }

    /// A window as the answer shows it: open at the time of sending, and when it closes (absent when it never
    /// opened).
    struct WindowView: Encodable, Equatable {
        let open: Bool
        let closesAt: Date?
    }

    /// The WhatsApp half of an answer (absent on SMS and e-mail). `pricingCategory` is null when the send is
    /// refused, and written as null rather than left out.
    struct PlatformView: Equatable {
        let billable: Bool
        let pricingCategory: String?
        let pricingRule: String
        let serviceWindow: WindowView
        let freeEntryPoint: WindowView

        init(_ pricing: PlatformPricing) {
            billable = pricing.billable
            pricingCategory = pricing.pricingCategory?.rawValue
            pricingRule = pricing.rule.id
            serviceWindow = WindowView(open: pricing.windowOpen, closesAt: pricing.window.closesAt)
            freeEntryPoint = WindowView(open: pricing.entryPointOpen, closesAt: pricing.entryPoint.closesAt)
        }
    }

    struct PredictedErrorView: Encodable, Equatable {
        let code: String
        let message: String
    }

    /// Written by hand (`json()`); `Encodable` for the test that compares it with the shared encoder.
    struct CheckView: Encodable, ResponseGenerator {
        let allowed: Bool
        let reason: String
        let category: String
        let consentId: String?
        let grantedAt: Date?
        let revokedAt: Date?
        let platform: PlatformView?
        let predictedError: PredictedErrorView?

        init(_ decision: SendDecision, consent: ConsentState) {
            allowed = decision.allowed
            reason = decision.reason.rawValue
            category = decision.category.rawValue
            switch consent {
            case .none: (consentId, grantedAt, revokedAt) = (nil, nil, nil)
            case .granted(let id, let at): (consentId, grantedAt, revokedAt) = (id.lowercased, at, nil)
            case .pending(let id): (consentId, grantedAt, revokedAt) = (id.lowercased, nil, nil)
            case .withdrawn(let id, let at): (consentId, grantedAt, revokedAt) = (id.lowercased, nil, at)
            }
            platform = decision.pricing.map(PlatformView.init)
            predictedError = decision.predictedError.map { PredictedErrorView(code: $0.code, message: $0.message) }
        }

        enum Key: String, CodingKey {
            case allowed, billable, category, consentId, freeEntryPoint, grantedAt, predictedError, pricingCategory,
                pricingRule, reason, revokedAt, serviceWindow
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(allowed, forKey: .allowed)
            try container.encode(reason, forKey: .reason)
            try container.encode(category, forKey: .category)
            try container.encodeIfPresent(consentId, forKey: .consentId)
            try container.encodeIfPresent(grantedAt, forKey: .grantedAt)
            try container.encodeIfPresent(revokedAt, forKey: .revokedAt)
            try container.encodeIfPresent(predictedError, forKey: .predictedError)
            if let platform {
                try container.encode(platform.billable, forKey: .billable)
                try container.encode(platform.pricingCategory, forKey: .pricingCategory)
                try container.encode(platform.pricingRule, forKey: .pricingRule)
                try container.encode(platform.serviceWindow, forKey: .serviceWindow)
                try container.encode(platform.freeEntryPoint, forKey: .freeEntryPoint)
            }
        }

        func response(from request: Request, context: some RequestContext) throws -> Response {
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json())
            )
        }

        /// The keys in the shared encoder's (sorted) order.
        func json() -> ByteBuffer {
            var json = ByteBuffer()
            json.reserveCapacity(384)
            json.writeStaticString(allowed ? #"{"allowed":true"# : #"{"allowed":false"#)
            if let platform {
                json.writeStaticString(platform.billable ? #","billable":true"# : #","billable":false"#)
            }
            json.writeStaticString(#","category":"#)
            JSONWriter.writeString(category, to: &json)
            if let consentId {
                json.writeStaticString(#","consentId":"#)
                JSONWriter.writeString(consentId, to: &json)
            }
            if let platform {
                json.writeStaticString(#","freeEntryPoint":"#)
                Self.write(platform.freeEntryPoint, to: &json)
            }
            if let grantedAt {
                json.writeStaticString(#","grantedAt":"#)
                JSONWriter.writeTime(grantedAt, to: &json)
            }
            if let predictedError {
                json.writeStaticString(#","predictedError":{"code":"#)
                JSONWriter.writeString(predictedError.code, to: &json)
                json.writeStaticString(#","message":"#)
                JSONWriter.writeString(predictedError.message, to: &json)
                json.writeStaticString("}")
            }
            if let platform {
                json.writeStaticString(#","pricingCategory":"#)
                JSONWriter.writeStringOrNull(platform.pricingCategory, to: &json)
                json.writeStaticString(#","pricingRule":"#)
                JSONWriter.writeString(platform.pricingRule, to: &json)
            }
            json.writeStaticString(#","reason":"#)
            JSONWriter.writeString(reason, to: &json)
            if let revokedAt {
                json.writeStaticString(#","revokedAt":"#)
                JSONWriter.writeTime(revokedAt, to: &json)
            }
            if let platform {
                json.writeStaticString(#","serviceWindow":"#)
                Self.write(platform.serviceWindow, to: &json)
            }
            json.writeStaticString("}")
            return json
        }

        private static func write(_ window: WindowView, to json: inout ByteBuffer) {
            json.writeStaticString("{")
            if let closesAt = window.closesAt {
                json.writeStaticString(#""closesAt":"#)
                JSONWriter.writeTime(closesAt, to: &json)
                json.writeStaticString(",")
            }
            json.writeStaticString(window.open ? #""open":true}"# : #""open":false}"#)
        }
    }

    func check(_ request: Request, context: ConsentRequestContext) async throws -> CheckView {
        let caller = try context.caller(requiring: .consentCheck)
        let body = try await request.decodeJSON(CheckBody.self, context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        let messageType = try Input.messageType(body.messageType, channel: channel)
        let now = clock()
        let sendAt = try Input.sendAt(body.sendAt, now: now)
        // A token newer than what the cache holds for the subject reads through to the database, which has the
        // write: the client only has the token once the write committed.
        let token = try Input.consistencyToken(body.consistencyToken)
        let (question, states) = try await ask(
            about: [subject], channel: channel, purpose: body.purpose, template: body.template,
            messageType: messageType, sendAt: sendAt, token: token, tenantId: caller.tenantId, context: context)
        let state = states.first ?? nil
        let decision = ConsentCheck.decide(question, facts: state?.facts ?? .unknown, policy: policy)
        metrics.recordDecision(decision.reason)
        return CheckView(decision, consent: state?.consent ?? .none)
    }

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
