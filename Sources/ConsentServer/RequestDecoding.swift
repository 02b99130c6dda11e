import ConsentCore
import Foundation
import Hummingbird

extension Request {
    /// Decodes a JSON body, turning every way it can be wrong into a contract error that names the field.
    public func decodeJSON<T: Decodable>(_ type: T.Type, context: ConsentRequestContext) async throws -> T {
        try Self.decodeJSON(T.self, from: try await jsonBody(context: context), context: context)
    }

    /// A JSON body of a flat shape (`FlatJSONDecodable`): read without the general decoder when every value is a
    /// plain string or null, the check's hot path; any other body goes to the general decoder, which reads it the
    /// same way or names what is wrong.
    func decodeJSON<T: FlatJSONDecodable>(_ type: T.Type, context: ConsentRequestContext) async throws -> T {
        let buffer = try await jsonBody(context: context)
        if let members = FlatJSONObject.parse(buffer.readableBytesView), let value = T(members: members) {
            return value
        }
        return try Self.decodeJSON(T.self, from: buffer, context: context)
    }

    private func jsonBody(context: ConsentRequestContext) async throws -> ByteBuffer {
        if let contentType = headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type", message: "send Content-Type: application/json")
        }
        // Already in memory: `BodyBufferingMiddleware` read it, within the request deadline.
        let buffer = try await body.collect(upTo: context.maxUploadSize)
        guard buffer.readableBytes > 0 else {
            throw APIError(
                .badRequest, code: "malformed_json", message: "the request body is empty; send a JSON object")
        }
        return buffer
    }

    private static func decodeJSON<T: Decodable>(
        _ type: T.Type, from buffer: ByteBuffer, context: ConsentRequestContext
    ) throws -> T {
        if JSONBodyShape.nestsTooDeep(buffer.readableBytesView) {
            throw APIError(
                .badRequest, code: "json_too_deep",
                message:
                    "the request body nests arrays and objects more than \(JSONBodyShape.defaultMaxDepth) levels deep")
        }
        do {
            return try context.requestDecoder.decode(T.self, from: buffer)
        } catch let error as DecodingError {
            throw APIError.decoding(error)
        }
    }
}

/// A request body whose fields are all strings: decodable from a `FlatJSONObject`'s members too. `init(members:)`
/// answers nil where the general decoder would refuse the body or read it otherwise (a required field missing or
/// null), so that the general decoder explains.
protocol FlatJSONDecodable: Decodable {
    init?(members: [String: String?])
}

extension APIError {
    static func decoding(_ error: DecodingError) -> APIError {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            let keys = codingPath + (key.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
                .trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath, key)
            return .invalid(field, "'\(field)' is required")
        case .valueNotFound(_, let context):
            let field = path(context.codingPath)
            return .invalid(field, "'\(field)' must not be null")
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return APIError(.badRequest, code: "malformed_json", message: "the request body must be a JSON object")
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            return .invalid(field, "'\(field)' must be \(Self.describe(type))")
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return APIError(.badRequest, code: "malformed_json", message: "the request body is not valid JSON")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            return .invalid(field, "'\(field)' is invalid: \(context.debugDescription)")
        @unknown default:
            return APIError(.badRequest, code: "malformed_json", message: "the request body could not be read")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        default: "an object of the documented shape"
        }
    }
}
