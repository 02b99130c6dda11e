import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// Notices: the exact wording shown to people. Admins create them (never edit them) and read them back.
struct NoticeRoutes {
    let database: ConsentDatabase
    var notices: NoticeStore { database.notices }

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/notices") { request, context in try await create(request, context: context) }
        group.get("/notices") { _, context in try await list(context: context) }
        group.get("/notices/{id}") { _, context in try await get(context: context) }
    }

    struct NewNotice: Codable {
        let channel: String
        let language: String
        let text: String
        let purposes: [String]
    }

    struct NoticeView: Encodable, ResponseEncodable {
        let id: String
        let channel: String
        let language: String
        let version: Int
        let text: String
        let textSha256: String
        let purposes: [String]
        let createdAt: Date

        init(_ notice: Notice) {
            id = notice.id.lowercased
            channel = notice.channel.rawValue
            language = notice.language
            version = notice.version
            text = notice.text
            textSha256 = notice.textSha256
            purposes = notice.purposes
            createdAt = notice.createdAt
        }
    }

    struct NoticeList: ResponseEncodable {
        let notices: [NoticeView]
    }

    func create(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let (body, claim) = try await request.decodeWrite(
            NewNotice.self, operation: "POST /v1/notices", subjectFields: [], context: context)
        let channel = try Input.channel(body.channel)
        guard NoticeText.isValidLanguage(body.language) else {
            throw APIError.invalid("language", "'language' must be a BCP 47 language tag such as en, it or pt-BR")
        }
        let text = try Input.text(body.text, field: "text", maxLength: NoticeText.maxBytes)
        guard text.utf8.count <= NoticeText.maxBytes else {
            throw APIError.invalid("text", "'text' must be at most \(NoticeText.maxBytes) bytes of UTF-8")
        }
        let purposes = try Input.purposes(body.purposes)
        return try await database.commit(
            notices.create(channel: channel, language: body.language, text: text, purposes: purposes, caller: caller),
            idempotency: claim?.naming([]), logger: context.logger,
            render: { try StoredResponse.json(.created, NoticeView($0)) }
        ).httpResponse
    }

    func list(context: ConsentRequestContext) async throws -> NoticeList {
        let caller = try context.caller(requiring: .admin)
        return NoticeList(
            notices: try await notices.list(tenantId: caller.tenantId, logger: context.logger).map(NoticeView.init))
    }

    func get(context: ConsentRequestContext) async throws -> NoticeView {
        let caller = try context.caller(requiring: .admin)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)),
            let notice = try await notices.get(tenantId: caller.tenantId, id: id, logger: context.logger)
        else { throw APIError.notFound("no such notice") }
        return NoticeView(notice)
    }
}
