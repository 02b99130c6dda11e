import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One signed POST of a webhook delivery.
public struct WebhookRequest: Sendable {
    public let url: String
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]
}

/// How deliveries leave the process: the HTTP client in the service, anything that answers a status code in tests
/// of the deliverer's bookkeeping.
public protocol WebhookTransport: Sendable {
    /// The status code the receiver answered; throws when none came within `timeout`.
    func post(_ request: WebhookRequest, timeout: Duration) async throws -> Int
}

/// async-http-client, configured for sending to other people's servers: redirects are not followed (a 3xx is a
/// failed attempt: following one would let a receiver point the service at an address the target check refused),
/// no proxy from the environment, nothing decompressed, and at most 64 KiB of an answer read.
public final class HTTPWebhookTransport: WebhookTransport {
    private let client: HTTPClient

    public init() {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .seconds(10)),
            decompression: .disabled)
        // As many connections to one receiver as one round may send it at once (the claim takes at most 16 per
        // endpoint, and the service runs `WebhookDeliveryService.lanes` rounds at a time); at the default of 8 the
        // rest of a round queued behind them (measured by scripts/chaos: latencies of up to 1 s from a receiver
        // that answered within 300 ms).
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    public func post(_ request: WebhookRequest, timeout: Duration) async throws -> Int {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = .POST
        for header in request.headers { outgoing.headers.add(name: header.name, value: header.value) }
        outgoing.body = .bytes(ByteBuffer(bytes: request.body))
        let response = try await client.execute(outgoing, timeout: .milliseconds(timeout.milliseconds))
        // The answer's body is not kept; reading a bounded part lets the connection be reused.
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Int(response.status.code)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }
}
