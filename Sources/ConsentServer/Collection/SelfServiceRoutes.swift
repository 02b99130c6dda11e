import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Self-service links: `POST /v1/subjects/links` (consent:write or dpo) signs one; `/self-service/{token}` is the
/// person's page, plain HTML forms that work without JavaScript, one button per purpose and one for all.
struct SelfServiceRoutes {
    let database: ConsentDatabase
    let collection: CollectionPolicy
    let templates: PageTemplates
    var store: SelfServiceStore { database.selfService }

    func register(keyed v1: RouterGroup<ConsentRequestContext>, open router: Router<ConsentRequestContext>) {
        v1.post("/subjects/links") { request, context in try await issue(request, context: context) }
        router.get("/self-service/{token}") { request, context in try await page(request, context: context) }
        router.post("/self-service/{token}/withdraw") { request, context in
            try await withdraw(request, context: context)
        }
        router.get("/assets/pages.css") { _, _ in HTMLPage.stylesheet() }
    }

    struct LinkBody: Codable {
        let subject: String
        let channel: String
    }

    struct LinkView: Encodable {
        let url: String
        let expiresAt: Date
    }

    func issue(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller()
        guard caller.has(.consentWrite) || caller.has(.dpo) else { throw APIError.forbidden(.consentWrite) }
        let body = try await request.decodeJSON(LinkBody.self, context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        guard
            let (token, expiresAt) = try await store.issue(
                subject: subject, lifetime: collection.selfServiceLinkLifetime, caller: caller, logger: context.logger)
        else { throw SubjectRightsError.subjectNotFound }
        let base = collection.publicBaseURL ?? request.head.authority.map { "http://\($0)" } ?? ""
        return try JSONResponse.encoding(
            LinkView(url: "\(base)/self-service/\(token)", expiresAt: expiresAt), status: .created)
    }

    func page(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        var withdrawn: Int?
        if let raw = request.uri.queryParameters.get("withdrawn") {
            guard let count = Int32(raw).map(Int.init), count >= 0 else {
                throw APIError(.badRequest, code: "bad_request", message: "'withdrawn' must be a count of 0 or more")
            }
            withdrawn = count
        }
        let page: SelfServicePage
        do {
            page = try await store.page(token, logger: context.logger)
        } catch let error as SelfServiceError {
            return unusable(error, language: SelfServiceText.preferred(request))
        }
        let (code, words) = SelfServiceText.resolve(page.language)
        return HTMLPage.response(
            HTMLPage.Document(
                language: code, title: words.title,
                page: SelfServiceView(
                    page, words: words, action: "/self-service/\(token)/withdraw", withdrawn: withdrawn)),
            templates: templates)
    }

    private func unusable(_ error: SelfServiceError, language: String?) -> Response {
        let (code, words) = SelfServiceText.resolve(language)
        let expired = error == .expired
        return HTMLPage.response(
            HTMLPage.Document(
                language: code, title: words.title,
                page: SelfServiceUnusableView(heading: words.title, message: expired ? words.expired : words.invalid)),
            templates: templates, status: expired ? .gone : .notFound)
    }

    /// One purpose (`purpose`, the button's own `withdraw` field is ignored) or every one (`all=1`).
    private struct WithdrawForm: Decodable {
        let purpose: String?
        let all: String?
    }

    func withdraw(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        let form = try await request.decodeForm(WithdrawForm.self)
        // Whatever the form names must be well formed, even beside `all`: a form that says two things is refused.
        let purpose = try form.purpose.map { raw in
            guard let key = try? Input.purpose(raw) else {
                throw APIError(.badRequest, code: "bad_request", message: "'purpose' must be a purpose key")
            }
            return key
        }
        let purposes: [String]?
        if let all = form.all {
            guard all == "1" else { throw APIError(.badRequest, code: "bad_request", message: "'all' must be 1") }
            purposes = nil
        } else if let purpose {
            purposes = [purpose]
        } else {
            throw APIError(.badRequest, code: "bad_request", message: "name a 'purpose' to withdraw, or 'all'")
        }
        let result: SelfServiceWithdrawal
        do {
            result = try await database.commit(try store.withdraw(token, purposes: purposes), logger: context.logger)
        } catch let error as SelfServiceError {
            return unusable(error, language: SelfServiceText.preferred(request))
        }
        // Post/redirect/get: reloading the page does not post again.
        return Response(
            status: .seeOther,
            headers: HTMLPage.headers(allowingScripts: false).merging([
                .location: "/self-service/\(token)?withdrawn=\(result.revoked.count)"
            ]))
    }
}

/// The page's words in the languages the reply keywords cover; English for any other.
enum SelfServiceText {
    struct Words {
        let title: String
        let intro: String
        let withdraw: String
        let withdrawAll: String
        let none: String
        let withdrawn: String
        let pending: String
        let granted: String
        let expired: String
        let invalid: String
    }

    static let english = Words(
        title: "Your messaging choices",
        intro: "You agreed to receive these messages from us on %@. Withdrawing takes effect at once.",
        withdraw: "Withdraw", withdrawAll: "Withdraw all", none: "You have no active consents on this channel.",
        withdrawn: "Done: %d withdrawn.", pending: "waiting for your confirmation", granted: "since %@",
        expired: "This link has expired or is no longer valid. Ask the sender for a new one.",
        invalid: "This link is not valid.")

    static let words: [String: Words] = [
        "en": english,
        "it": Words(
            title: "Le tue scelte sui messaggi",
            intro: "Hai accettato di ricevere questi messaggi da noi su %@. La revoca ha effetto subito.",
            withdraw: "Revoca", withdrawAll: "Revoca tutto", none: "Non hai consensi attivi su questo canale.",
            withdrawn: "Fatto: %d revocati.", pending: "in attesa della tua conferma", granted: "dal %@",
            expired: "Questo link è scaduto o non è più valido. Chiedine uno nuovo al mittente.",
            invalid: "Questo link non è valido."),
        "de": Words(
            title: "Ihre Nachrichten-Einstellungen",
            intro: "Sie haben zugestimmt, diese Nachrichten von uns über %@ zu erhalten. Ein Widerruf gilt sofort.",
            withdraw: "Widerrufen", withdrawAll: "Alle widerrufen",
            none: "Sie haben auf diesem Kanal keine aktiven Einwilligungen.",
            withdrawn: "Erledigt: %d widerrufen.", pending: "wartet auf Ihre Bestätigung", granted: "seit %@",
            expired: "Dieser Link ist abgelaufen oder nicht mehr gültig. Bitten Sie den Absender um einen neuen.",
            invalid: "Dieser Link ist ungültig."),
        "fr": Words(
            title: "Vos choix de messages",
            intro:
                "Vous avez accepté de recevoir ces messages de notre part sur %@. Le retrait prend effet immédiatement.",
            withdraw: "Retirer", withdrawAll: "Tout retirer",
            none: "Vous n'avez aucun consentement actif sur ce canal.",
            withdrawn: "C'est fait : %d retiré(s).", pending: "en attente de votre confirmation",
            granted: "depuis le %@",
            expired: "Ce lien a expiré ou n'est plus valide. Demandez-en un nouveau à l'expéditeur.",
            invalid: "Ce lien n'est pas valide."),
        "es": Words(
            title: "Tus preferencias de mensajes",
            intro: "Aceptaste recibir estos mensajes nuestros por %@. La retirada tiene efecto inmediato.",
            withdraw: "Retirar", withdrawAll: "Retirar todo", none: "No tienes consentimientos activos en este canal.",
            withdrawn: "Hecho: %d retirados.", pending: "pendiente de tu confirmación", granted: "desde el %@",
            expired: "Este enlace ha caducado o ya no es válido. Pide uno nuevo al remitente.",
            invalid: "Este enlace no es válido."),
        "pt": Words(
            title: "As suas escolhas de mensagens",
            intro: "Aceitou receber estas mensagens nossas por %@. A retirada tem efeito imediato.",
            withdraw: "Retirar", withdrawAll: "Retirar tudo", none: "Não tem consentimentos ativos neste canal.",
            withdrawn: "Feito: %d retirados.", pending: "a aguardar a sua confirmação", granted: "desde %@",
            expired: "Esta ligação expirou ou já não é válida. Peça uma nova ao remetente.",
            invalid: "Esta ligação não é válida."),
    ]

    /// The primary subtag if we have words for it, else English.
    static func resolve(_ language: String?) -> (code: String, words: Words) {
        let primary = (language ?? "en").lowercased().split(separator: "-").first.map(String.init) ?? "en"
        if let words = words[primary] { return (primary, words) }
        return ("en", english)
    }

    /// For pages with no notice to go by: the browser's first language we have.
    static func preferred(_ request: Request) -> String? {
        let header = request.headers[.acceptLanguage] ?? ""
        return header.split(separator: ",").lazy.map {
            $0.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }.first { words[$0.lowercased().split(separator: "-").first.map(String.init) ?? ""] != nil }
    }

    static func channelName(_ channel: MessageChannel) -> String {
        switch channel {
        case .whatsapp: "WhatsApp"
        case .sms: "SMS"
        case .email: "e-mail"
        }
    }
}

/// The person's page: their consents on this channel, one button per purpose and one for all.
struct SelfServiceView: PageView {
    static let template = PageTemplates.Name.selfService

    struct Consent: Sendable {
        let purpose: String
        let name: String
        /// Since when, or that it waits for their confirmation.
        let detail: String
    }

    let heading: String
    let withdrawn: String?
    let intro: String
    let none: String
    let anyConsents: Bool
    let consents: [Consent]
    /// Where the forms post; it holds the link's token.
    let action: String
    let withdrawLabel: String
    let withdrawAllLabel: String
}

extension SelfServiceView {
    init(_ page: SelfServicePage, words: SelfServiceText.Words, action: String, withdrawn: Int?) {
        heading = words.title
        self.withdrawn = withdrawn.map { String(format: words.withdrawn, $0) }
        intro = String(format: words.intro, SelfServiceText.channelName(page.channel))
        none = words.none
        anyConsents = !page.consents.isEmpty
        consents = page.consents.map { consent in
            let detail =
                consent.status == .pending
                ? words.pending
                : consent.grantedAt.map { String(format: words.granted, RFC3339.format($0).prefix(10).description) }
                    ?? ""
            return Consent(purpose: consent.purpose, name: consent.purposeName, detail: detail)
        }
        self.action = action
        withdrawLabel = words.withdraw
        withdrawAllLabel = words.withdrawAll
    }
}

/// An expired or unknown link.
struct SelfServiceUnusableView: PageView {
    static let template = PageTemplates.Name.selfServiceUnusable
    let heading: String
    let message: String
}
