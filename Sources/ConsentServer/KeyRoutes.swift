import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// An admin's view of its own tenant's API keys: list them, revoke one. Tokens are never shown again.
struct KeyRoutes {
    let database: ConsentDatabase
    var keys: APIKeyStore { database.apiKeys }

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.get("/keys") { _, context in try await list(context: context) }
        group.post("/keys/{id}/revoke") { _, context in try await revoke(context: context) }
    }

    struct KeyView: Encodable {
        let id: String
        let prefix: String
        let label: String
        let scopes: [String]
        let createdAt: Date
        let revokedAt: Date?

        init(_ record: APIKeyRecord) {
            id = record.id.lowercased
            prefix = record.displayPrefix
            label = record.label
            scopes = record.scopes.sorted().map(\.rawValue)
            createdAt = record.createdAt
            revokedAt = record.revokedAt
        }
    }

    struct KeyList: ResponseEncodable {
        let keys: [KeyView]
    }

    struct Revoked: ResponseEncodable {
        let id: String
        let revoked: Bool
    }

    func list(context: ConsentRequestContext) async throws -> KeyList {
        let caller = try context.caller(requiring: .admin)
        let records = try await keys.list(tenantId: caller.tenantId, logger: context.logger)
        return KeyList(keys: records.map(KeyView.init))
    }

    func revoke(context: ConsentRequestContext) async throws -> Revoked {
        let caller = try context.caller(requiring: .admin)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else {
            throw APIError.notFound("no such API key")
        }
        let revocation = keys.revocation(tenantId: caller.tenantId, keyId: id, actor: caller.actor)
        guard try await database.commit(revocation, logger: context.logger).revoked else {
            throw APIError.notFound("no such live API key")
        }
        return Revoked(id: id.lowercased, revoked: true)
    }
}
