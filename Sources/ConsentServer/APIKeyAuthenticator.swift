import ConsentCore
import ConsentStore
import Hummingbird
import Logging

/// Resolves `Authorization: Bearer <key>` to the caller's tenant and scopes, or refuses with 401.
/// Tokens that cannot be ours (wrong prefix, length or checksum) are refused without a database round trip.
struct APIKeyAuthenticator: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let keys: APIKeyStore

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError.unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", let token = APIKeyToken(parsing: parts[1]) else {
            throw APIError.unauthenticated("the API key is malformed")
        }
        guard let identity = try await keys.authenticate(token, logger: context.logger) else {
            throw APIError.unauthenticated("the API key is unknown or revoked")
        }
        var context = context
        context.identity = identity
        // One metadata change, not one per key: the stream handler renders all its metadata again on each.
        var metadata: Logger.Metadata = ["tenant": .stringConvertible(identity.tenantId)]
        if let keyId = identity.keyId { metadata["key"] = .stringConvertible(keyId) }
        context.logger.handler.metadata.merge(metadata) { $1 }
        return try await next(request, context)
    }
}
