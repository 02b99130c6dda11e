import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

extension Request {
    /// A write's JSON body and its `Idempotency-Key` claim. The claim hashes the decoded body re-encoded with sorted
    /// keys, so a retry that differs only in spacing or key order is the same request.
    func decodeWrite<Body: Codable>(
        _ type: Body.Type, operation: String, context: ConsentRequestContext
    ) async throws -> (Body, IdempotencyClaim?) {
        let body = try await decodeJSON(type, context: context)
        guard let key = headers[.idempotencyKey] else { return (body, nil) }
        guard IdempotencyClaim.isValidKey(key) else {
            throw APIError.invalid("Idempotency-Key", "'Idempotency-Key' must be 1 to 255 visible ASCII characters")
        }
        return (body, IdempotencyClaim(key: key, operation: operation, request: try ConsentJSON.encoder.encode(body)))
    }
}

extension StoredResponse {
    /// The bytes an idempotent write keeps and replays, written by the one JSON encoder (see `JSONResponse`).
    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) throws -> StoredResponse {
        StoredResponse(status: status.code, body: Array(try ConsentJSON.encoder.encode(value)))
    }
}

extension WriteOutcome {
    /// The response as first sent; a replay says so in `Idempotent-Replayed`.
    var httpResponse: Response {
        JSONResponse.bytes(
            response.body, status: HTTPResponse.Status(code: response.status),
            headers: replayed ? [.idempotentReplayed: "true"] : [:])
    }
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}
