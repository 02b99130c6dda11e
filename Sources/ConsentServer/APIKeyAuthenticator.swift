import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Resolves `Authorization: Bearer <key>` to the caller's tenant and scopes, or refuses with 401.
/// Tokens that cannot be ours (wrong prefix, length or checksum) are refused without a database round trip, and an
/// address whose keys keep failing is refused with 429 before its next uncached key is looked up
/// (`FailedAuthenticationLimiter`).
struct APIKeyAuthenticator: RouterMiddleware {
    typealias Context = ConsentRequestContext
    let keys: APIKeyStore
    let failures: FailedAuthenticationLimiter
    let trustForwardedFor: Bool

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let address = ClientAddress.of(request, context: context, trustForwardedFor: trustForwardedFor) ?? "unknown"
        guard let header = request.headers[.authorization] else {
            failures.failed(address)
            throw APIError.unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", let token = APIKeyToken(parsing: parts[1]) else {
            failures.failed(address)
            throw APIError.unauthenticated("the API key is malformed")
        }
        let identity = try await keys.authenticate(token, logger: context.logger) {
            guard failures.mayTry(address) else { throw APIError.tooManyFailedKeys }
        }
        guard let identity else {
            failures.failed(address)
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

extension APIError {
    static let tooManyFailedKeys = APIError(
        .tooManyRequests, code: "rate_limited",
        message: "too many requests from this address presented a missing, malformed or unknown API key; retry later",
        headers: [HTTPField.Name("Retry-After")!: "1"])
}

/// The client's address for limits and provenance: the socket's peer, or the last `X-Forwarded-For` hop when the
/// operator says a proxy sets it (`CONSENTD_TRUST_FORWARDED_FOR`).
enum ClientAddress {
    static func of(_ request: Request, context: ConsentRequestContext, trustForwardedFor: Bool) -> String? {
        if trustForwardedFor, let forwarded = request.headers[.forwardedFor],
            let last = forwarded.split(separator: ",").last.map({ $0.trimmingCharacters(in: .whitespaces) }),
            let address = IPAddressText.normalised(last)
        {
            return address
        }
        return context.remoteAddress
    }
}
