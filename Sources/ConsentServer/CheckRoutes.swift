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
}
