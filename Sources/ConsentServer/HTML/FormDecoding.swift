import Foundation
import Hummingbird

extension Request {
    /// An HTML form's `application/x-www-form-urlencoded` body, decoded by Hummingbird's `URLEncodedFormDecoder`.
    /// The body is refused past `limit` (413, before it is read in full); a body that does not decode (bad
    /// percent-encoding, a field sent twice, a field of the wrong shape) is `APIError.malformedForm`. Forms declare
    /// their fields optional and the route says what a missing one means.
    func decodeForm<Form: Decodable>(_ type: Form.Type, limit: Int = 16 * 1024) async throws -> Form {
        let buffer = try await body.collect(upTo: limit)
        do {
            return try URLEncodedFormDecoder().decode(Form.self, from: String(buffer: buffer))
        } catch {
            throw APIError.malformedForm
        }
    }
}

extension APIError {
    static let malformedForm = APIError(
        .badRequest, code: "bad_request", message: "the form body is not well-formed application/x-www-form-urlencoded")
}
