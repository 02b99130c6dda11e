import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Message templates: admins register them (a new wording is a new version), lint drafts, and record the platform's
/// review; senders list what they may send. The platform's webhooks change status and category too
/// (`WhatsAppWebhookRoutes`).
struct MessageTemplateRoutes {
    let templates: TemplateStore
    let linter: TemplateLinter

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/templates") { request, context in try await create(request, context: context) }
        group.get("/templates") { _, context in try await list(context: context) }
        group.post("/templates/lint") { request, context in try await lint(request, context: context) }
        group.get("/templates/{id}") { _, context in try await get(context: context) }
        group.post("/templates/{id}/status") { request, context in try await setStatus(request, context: context) }
    }

    struct HeaderBody: Codable {
        let format: String
        let text: String?
    }

    struct NewTemplate: Codable {
        let channel: String
        let name: String
        let language: String
        let category: String
        let purpose: String
        let body: String
        let header: HeaderBody?
        let buttons: [TemplateButton]?
    }

    struct Draft: Codable {
        let category: String
        let language: String
        let body: String
        let header: HeaderBody?
        let buttons: [TemplateButton]?
    }

    struct StatusChange: Codable {
        let status: String
        let reason: String?
        let override: Bool?
    }

    struct LintView: Encodable, ResponseEncodable {
        let findings: [TemplateLintFinding]
    }

    struct TemplateView: Encodable, ResponseEncodable {
        let id: String
        let channel = "whatsapp"
        let name: String
        let language: String
        let version: Int
        let category: String
        let purpose: String
        let body: String
        let bodySha256: String
        let header: TemplateHeader?
        let buttons: [TemplateButton]
        let status: String
        let statusReason: String?
        let quality: String?
        let lint: LintView
        let createdAt: Date
        let consistencyToken: String?

        init(_ template: MessageTemplate, token: ConsistencyToken? = nil) {
            id = template.id.lowercased
            name = template.name
            language = template.language
            version = template.version
            category = template.category.rawValue
            purpose = template.purpose
            body = template.body
            bodySha256 = template.bodySha256
            header = template.header
            buttons = template.buttons
            status = template.status.rawValue
            statusReason = template.statusReason
            quality = template.quality
            lint = LintView(findings: template.findings)
            createdAt = template.createdAt
            consistencyToken = token?.description
        }
    }

    struct TemplateList: ResponseEncodable {
        let templates: [TemplateView]
    }

    /// The header and buttons of a body, validated.
    static func parts(_ header: HeaderBody?, _ buttons: [TemplateButton]?) throws(APIError) -> (
        TemplateHeader?, [TemplateButton]
    ) {
        var parsed: TemplateHeader?
        if let header {
            let format: TemplateHeaderFormat = try Input.oneOf(header.format, field: "header.format")
            if let text = header.text { _ = try Input.text(text, field: "header.text", maxLength: 60) }
            guard format == .text || header.text == nil else {
                throw .invalid("header.text", "'header.text' belongs to a text header only")
            }
            parsed = TemplateHeader(format: format, text: header.text)
        }
        let buttons = buttons ?? []
        guard buttons.count <= 10 else { throw .invalid("buttons", "a template has at most 10 buttons") }
        for (index, button) in buttons.enumerated() {
            _ = try Input.text(button.type, field: "buttons[\(index)].type", maxLength: 32)
            _ = try Input.text(button.text, field: "buttons[\(index)].text", maxLength: 25)
        }
        return (parsed, buttons)
    }

    static func language(_ raw: String) throws(APIError) -> String {
        guard MessageTemplate.isValidLanguage(raw) else {
            throw .invalid("language", "'language' must be a platform language code such as it, en_US or pt_BR")
        }
        return raw
    }

    func create(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let body = try await request.decodeJSON(NewTemplate.self, context: context)
        guard body.channel == MessageChannel.whatsapp.rawValue else {
            throw APIError.invalid("channel", "'channel' must be whatsapp: templates are the WhatsApp platform's")
        }
        guard MessageTemplate.isValidName(body.name) else {
            throw APIError.invalid("name", "'name' must be 1 to 512 lower-case letters, digits or underscores")
        }
        let language = try Self.language(body.language)
        let category: PurposeCategory = try Input.oneOf(body.category, field: "category")
        let purpose = try Input.purpose(body.purpose)
        let text = try Input.text(body.body, field: "body", maxLength: MessageTemplate.maxBodyLength)
        let (header, buttons) = try Self.parts(body.header, body.buttons)
        let findings = linter.lint(
            isUtility: category == .utility, language: language, body: text, headerFormat: header?.format)
        let (template, token) = try await templates.register(
            name: body.name, language: language, category: category, purpose: purpose, body: text, header: header,
            buttons: buttons, findings: findings, caller: caller, logger: context.logger)
        return try JSONResponse.encoding(TemplateView(template, token: token), status: .created)
    }

    func list(context: ConsentRequestContext) async throws -> TemplateList {
        let caller = try context.caller()
        guard caller.has(.admin) || caller.has(.consentCheck) else { throw APIError.forbidden(.consentCheck) }
        return TemplateList(
            templates: try await templates.list(tenantId: caller.tenantId, logger: context.logger).map {
                TemplateView($0)
            })
    }

    func get(context: ConsentRequestContext) async throws -> TemplateView {
        let caller = try context.caller()
        guard caller.has(.admin) || caller.has(.consentCheck) else { throw APIError.forbidden(.consentCheck) }
        let id = try Input.uuid(context.parameters.get("id") ?? "", field: "id")
        guard let template = try await templates.get(tenantId: caller.tenantId, id: id, logger: context.logger) else {
            throw APIError.notFound("no template has this id")
        }
        return TemplateView(template)
    }

    func setStatus(_ request: Request, context: ConsentRequestContext) async throws -> TemplateView {
        let caller = try context.caller(requiring: .admin)
        let id = try Input.uuid(context.parameters.get("id") ?? "", field: "id")
        let body = try await request.decodeJSON(StatusChange.self, context: context)
        let status: TemplateStatus = try Input.oneOf(body.status, field: "status")
        let reason = try body.reason.map { reason throws(APIError) in
            try Input.text(reason, field: "reason", maxLength: 500)
        }
        let (template, token) = try await templates.setStatus(
            id: id, status: status, reason: reason, override: body.override ?? false, caller: caller,
            logger: context.logger)
        return TemplateView(template, token: token)
    }

    func lint(_ request: Request, context: ConsentRequestContext) async throws -> LintView {
        _ = try context.caller(requiring: .admin)
        let body = try await request.decodeJSON(Draft.self, context: context)
        let category: PurposeCategory = try Input.oneOf(body.category, field: "category")
        let language = try Self.language(body.language)
        let text = try Input.text(body.body, field: "body", maxLength: MessageTemplate.maxBodyLength)
        let (header, _) = try Self.parts(body.header, body.buttons)
        return LintView(
            findings: linter.lint(
                isUtility: category == .utility, language: language, body: text, headerFormat: header?.format))
    }
}

extension TemplateLinter {
    /// Loaded once per process: the rulebook is compiled on first use and every router shares it.
    static let shared = Result { try TemplateLinter.bundled() }
}
