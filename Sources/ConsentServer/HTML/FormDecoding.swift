import Foundation
import Hummingbird

extension Request {
    /// An HTML form's `application/x-www-form-urlencoded` body, decoded by Hummingbird's `URLEncodedFormDecoder`.
    /// The body is refused past `limit` (413, before it is read in full). As browsers and the forms' contract
    /// have it, a field sent twice counts once (the first), and fields the form does not name are ignored, even
    /// ones the decoder would read as nested (`a[b]`): our forms have flat, plain names. A body that still does not
    /// decode (bad percent-encoding, a named field of the wrong shape) is `APIError.malformedForm`. Forms declare
    /// their fields optional and the route says what a missing one means.
    func decodeForm<Form: Decodable>(_ type: Form.Type, limit: Int = 16 * 1024) async throws -> Form {
        let buffer = try await body.collect(upTo: limit)
        do {
            return try URLEncodedFormDecoder().decode(Form.self, from: Self.flatFirstFields(String(buffer: buffer)))
        } catch {
            throw APIError.malformedForm
        }
    }

    /// The form with each field's first occurrence only, and without fields whose names are not plain.
    static func flatFirstFields(_ form: String) -> String {
        var seen = Set<String>()
        var kept: [Substring] = []
        for pair in form.split(separator: "&", omittingEmptySubsequences: true) {
            let rawName = pair.prefix { $0 != "=" }
            let name =
                String(rawName).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(rawName)
            guard !name.contains("["), !name.contains("]"), seen.insert(name).inserted else { continue }
            kept.append(pair)
        }
        return kept.joined(separator: "&")
    }
}

extension APIError {
    static let malformedForm = APIError(
        .badRequest, code: "bad_request", message: "the form body is not well-formed application/x-www-form-urlencoded")
}
