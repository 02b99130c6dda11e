import ConsentCore
import Foundation
import Hummingbird
import NIOCore

/// Per-request state: who called (set by `APIKeyAuthenticator`) and the JSON coders the contract's formats need.
public struct ConsentRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: CallerIdentity?
    /// The peer's address, which consent provenance records for the widget's decisions.
    public let remoteAddress: String?
    /// The request's connection, which a body read past the deadline closes (`BodyBufferingMiddleware`).
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.channel = source.channel
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Request bodies above this are refused with 413 before they are read in full. A batch check of 10,000
    /// subjects is about 300 kB; 1 MiB leaves room without inviting memory abuse.
    public var maxUploadSize: Int { Self.maxBodyBytes }
    public static let maxBodyBytes = 1 << 20

    public var responseEncoder: JSONEncoder { ConsentJSON.encoder }
    public var requestDecoder: JSONDecoder { ConsentJSON.decoder }

    /// The caller, who must hold `scope`; 403 otherwise.
    public func caller(requiring scope: Scope) throws -> CallerIdentity {
        let caller = try self.caller()
        guard caller.has(scope) else { throw APIError.forbidden(scope) }
        return caller
    }

    /// The caller, with any scope.
    public func caller() throws -> CallerIdentity {
        guard let identity else { throw APIError.unauthenticated("an API key is required") }
        return identity
    }
}

/// The contract's JSON: RFC 3339 UTC times with milliseconds, stable key order.
public enum ConsentJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = RFC3339.parse(text) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "expected an RFC 3339 time such as 2026-01-31T09:30:00Z")
            }
            return date
        }
        return decoder
    }()
}
