import ConsentCore
import ConsentStore
import Foundation
import HTTPTypes
import Hummingbird

extension Request {
    /// A write's JSON body and its `Idempotency-Key`. The request is the decoded body re-encoded with sorted keys
    /// (a retry that differs only in spacing or key order is the same request) and without `subjectFields`, the
    /// fields that name people: the route names them, validated, through `RequestedClaim.naming`, and the store
    /// hashes their blind indexes instead.
    func decodeWrite<Body: Codable>(
        _ type: Body.Type, operation: String, subjectFields: Set<String>, context: ConsentRequestContext
    ) async throws -> (Body, RequestedClaim?) {
        let body = try await decodeJSON(type, context: context)
        guard let key = headers[.idempotencyKey] else { return (body, nil) }
        guard IdempotencyClaim.isValidKey(key) else {
            throw APIError.invalid("Idempotency-Key", "'Idempotency-Key' must be 1 to 255 visible ASCII characters")
        }
        let encoded = try ConsentJSON.encoder.encode(body)
        guard !subjectFields.isEmpty else {
            return (body, RequestedClaim(key: key, operation: operation, request: encoded))
        }
        guard var object = try JSONSerialization.jsonObject(with: encoded) as? [String: Any] else {
            throw APIError.invalid("body", "the body must be a JSON object")
        }
        for field in subjectFields { object.removeValue(forKey: field) }
        let request = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return (body, RequestedClaim(key: key, operation: operation, request: request))
    }
}

/// An `Idempotency-Key` whose request does not yet name its people: only `naming` makes the claim a write takes,
/// so a route cannot forget them (two requests for two people would otherwise hash alike).
struct RequestedClaim {
    let key: String
    let operation: String
    let request: Data

    /// `outlivingThem` for an erasure, whose own record must answer its retry after the person is gone.
    func naming(_ subjects: [SubjectIdentifier], outlivingThem: Bool = false) -> IdempotencyClaim {
        IdempotencyClaim(
            key: key, operation: operation, request: Array(request), subjects: subjects,
            outlivesSubjects: outlivingThem)
    }
}

extension StoredResponse {
    /// The bytes an idempotent write keeps and replays, written by the one JSON encoder (see `JSONResponse`).
    static func json(_ status: HTTPResponse.Status, _ value: some Encodable, replayable: Bool = true) throws
        -> StoredResponse
    {
        StoredResponse(status: status.code, body: Array(try ConsentJSON.encoder.encode(value)), replayable: replayable)
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
