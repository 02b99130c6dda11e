import ConsentCore
import Foundation
import HTTPTypes
import Hummingbird

/// The one way the service writes a JSON answer. Ordinary answers are `Encodable` views encoded by
/// `ConsentJSON.encoder` (sorted keys, RFC 3339 times), the same encoder `ConsentRequestContext.responseEncoder`
/// gives Hummingbird for `ResponseEncodable` returns and `StoredResponse` uses for the bytes an idempotent write
/// keeps and replays.
///
/// RFC 8785 canonical JSON (`canonical(_:)`) is used only where a hash is computed over what is served: audit
/// events, whose `leafHash` is SHA-256 over the canonical form of the event's own fields, and the subject export
/// bundle, which carries those events with their inclusion proofs so that an auditor can recompute each leaf
/// from the bundle alone (docs/data-subject-rights.md). Nothing else needs it.
enum JSONResponse {
    static func encoding(
        _ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]
    ) throws -> Response {
        bytes(Array(try ConsentJSON.encoder.encode(value)), status: status, headers: headers)
    }

    /// See the type's comment for where this is needed.
    static func canonical(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws
        -> Response
    {
        bytes(try CanonicalJSON.serialize(value), status: status, headers: headers)
    }

    /// JSON already written: a stored response replayed byte for byte, or canonical bytes.
    static func bytes(_ body: [UInt8], status: HTTPResponse.Status, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension JSONValue {
    /// An `Encodable` view as a JSON value, through `ConsentJSON.encoder`, for the rare answer that embeds an
    /// ordinary view in a canonical document (a completed request that carries an export bundle).
    init(encoding value: some Encodable) throws {
        self = try ConsentJSON.decoder.decode(JSONValue.self, from: ConsentJSON.encoder.encode(value))
    }
}
