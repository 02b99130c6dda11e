import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// The purpose catalogue: every key reads it; admins define their tenant's own purposes.
struct PurposeRoutes {
    let purposes: PurposeStore

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/purposes") { _, context in try await list(context: context) }
        group.put("/purposes/{key}") { request, context in try await define(request, context: context) }
    }

    struct PurposeList: ResponseEncodable {
        let purposes: [Purpose]
    }

    struct Definition: Codable {
        let name: String
        let category: String
    }

    func list(context: ConsentRequestContext) async throws -> PurposeList {
        let caller = try context.caller()
        return PurposeList(purposes: try await purposes.list(tenantId: caller.tenantId, logger: context.logger))
    }

    func define(_ request: Request, context: ConsentRequestContext) async throws -> Response {
        let caller = try context.caller(requiring: .admin)
        let key = try Input.purpose(context.parameters.get("key") ?? "", field: "key")
        let body = try await request.decodeJSON(Definition.self, context: context)
        let name = try Input.text(body.name, field: "name", maxLength: 200)
        let category: PurposeCategory = try Input.oneOf(body.category, field: "category")
        let (purpose, created, token) = try await purposes.define(
            tenantId: caller.tenantId, key: key, name: name, category: category, actor: caller.actor,
            logger: context.logger)
        return try JSONResponse.encoding(
            DefinedView(purpose: purpose, consistencyToken: token.description), status: created ? .created : .ok)
    }

    /// The purpose, and the token a check on another instance carries to see its category at once.
    struct DefinedView: Encodable {
        let purpose: Purpose
        let consistencyToken: String

        func encode(to encoder: any Encoder) throws {
            try purpose.encode(to: encoder)
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(consistencyToken, forKey: .consistencyToken)
        }

        enum Key: CodingKey { case consistencyToken }
    }
}
