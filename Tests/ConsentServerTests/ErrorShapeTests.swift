import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ConsentServer

/// Every way a request can go wrong leaves in the contract's error shape.
@Suite struct ErrorShapeTests {
    struct Order: Decodable {
        struct Item: Decodable {
            let name: String
            let quantity: Int
        }
        let items: [Item]
        let placedAt: Date
        let note: String?
    }

    struct Boom: Error {}

    /// The production middleware and decoding on a router with two probe routes.
    func withProbeApp(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let router = Router(context: ConsentRequestContext.self)
        router.add(middleware: ErrorShapingMiddleware())
        router.post("/probe/order") { request, context -> HTTPResponse.Status in
            _ = try await request.decodeJSON(Order.self, context: context)
            return .noContent
        }
        router.get("/probe/boom") { _, _ -> HTTPResponse.Status in throw Boom() }
        try await Application(router: router).test(.router, body)
    }

    func expectError(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ code: String, field: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        let error = try response.error
        #expect(error.code == code, sourceLocation: sourceLocation)
        #expect(error.field == field, sourceLocation: sourceLocation)
        #expect(error.message.isEmpty == false, sourceLocation: sourceLocation)
    }

    func post(_ client: any TestClientProtocol, _ json: String, contentType: String = "application/json") async throws
        -> TestResponse
    {
        try await client.execute(
            uri: "/probe/order", method: .post, headers: [.contentType: contentType], body: ByteBuffer(string: json))
    }

    @Test func goodInputPasses() async throws {
        try await withProbeApp { client in
            let response = try await post(
                client, #"{"items":[{"name":"tea","quantity":2}],"placedAt":"2026-11-24T10:00:00Z"}"#)
            #expect(response.status == .noContent)
            let fractional = try await post(client, #"{"items":[],"placedAt":"2026-11-24T10:00:00.123+01:00"}"#)
            #expect(fractional.status == .noContent)
        }
    }

    @Test func badInputIsNamed() async throws {
        try await withProbeApp { client in
            try expectError(try await post(client, "{not json"), .badRequest, "malformed_json")
            try expectError(try await post(client, ""), .badRequest, "malformed_json")
            try expectError(
                try await post(client, #"{"placedAt":"2026-11-24T10:00:00Z"}"#), .unprocessableContent, "invalid_field",
                field: "items")
            try expectError(
                try await post(
                    client,
                    #"{"items":[{"name":"a","quantity":1},{"name":7,"quantity":1}],"placedAt":"2026-11-24T10:00:00Z"}"#),
                .unprocessableContent, "invalid_field", field: "items[1].name")
            try expectError(
                try await post(client, #"{"items":[],"placedAt":"yesterday"}"#), .unprocessableContent, "invalid_field",
                field: "placedAt")
            try expectError(
                try await post(client, #"{"items":null,"placedAt":"2026-11-24T10:00:00Z"}"#), .unprocessableContent,
                "invalid_field", field: "items")
            try expectError(
                try await post(client, "{}", contentType: "text/plain"), .unsupportedMediaType, "unsupported_media_type"
            )
        }
    }

    /// An optional field sent as null is the same as leaving it out; a body that is not an object is malformed.
    @Test func nullIsAbsentAndANonObjectBodyIsMalformed() async throws {
        try await withProbeApp { client in
            let withNull = try await post(
                client, #"{"items":[],"placedAt":"2026-11-24T10:00:00Z","note":null,"x":null}"#)
            #expect(withNull.status == .noContent)
            try expectError(try await post(client, "[1,2]"), .badRequest, "malformed_json")
            try expectError(try await post(client, #""text""#), .badRequest, "malformed_json")
        }
    }

    @Test func deepNestingIsRefusedBeforeDecoding() async throws {
        try await withProbeApp { client in
            let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
            try expectError(
                try await post(client, #"{"items":[],"placedAt":"2026-11-24T10:00:00Z","extra":\#(deep)}"#),
                .badRequest, "json_too_deep")
            let shallow = String(repeating: "[", count: 20) + String(repeating: "]", count: 20)
            let accepted = try await post(
                client, #"{"items":[],"placedAt":"2026-11-24T10:00:00Z","extra":\#(shallow)}"#)
            #expect(accepted.status == .noContent)
        }
    }

    @Test func oversizedBodiesAre413() async throws {
        try await withProbeApp { client in
            let padding = String(repeating: "x", count: ConsentRequestContext.maxBodyBytes)
            let response = try await post(
                client, #"{"items":[],"placedAt":"2026-11-24T10:00:00Z","pad":"\#(padding)"}"#)
            try expectError(response, .contentTooLarge, "payload_too_large")
        }
    }

    @Test func unknownRoutesAndUnexpectedFailures() async throws {
        try await withProbeApp { client in
            let unknown = try await client.execute(uri: "/nowhere", method: .get)
            try expectError(unknown, .notFound, "not_found")
            let boom = try await client.execute(uri: "/probe/boom", method: .get)
            try expectError(boom, .internalServerError, "internal_error")
            let requestID = try #require(boom.headers[.requestID])
            #expect(try boom.error.message.contains(requestID))
        }
    }
}

/// The batch answer is written by hand for speed; it must be byte for byte what the shared encoder writes.
@Suite struct BatchAnswerEncodingTests {
    struct Mirror: Encodable {
        struct Result: Encodable {
            let subject: String
            let allowed: Bool
            let reason: String
            let category: String
            let billable: Bool?
            /// Present (null when refused) exactly when `billable` is: WhatsApp answers.
            let pricingCategory: String?
            let whatsapp: Bool

            enum Key: String, CodingKey { case subject, allowed, reason, category, billable, pricingCategory }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(subject, forKey: .subject)
                try container.encode(allowed, forKey: .allowed)
                try container.encode(reason, forKey: .reason)
                try container.encode(category, forKey: .category)
                if whatsapp {
                    try container.encode(billable, forKey: .billable)
                    try container.encode(pricingCategory, forKey: .pricingCategory)
                }
            }
        }
        let results: [Result]
    }

    @Test func matchesTheSharedEncoderForAwkwardStrings() throws {
        let subjects = [
            "+39 333 123 4567", "+39\t333\u{00A0}1234567", #""quoted\back"@example.org"#, "a/b@example.org",
            "ctl\u{01}\u{1F}\n\r\u{08}\u{0C}@example.org", "àccent@exämple.org", "😀@example.org", "",
        ]
        let results = subjects.enumerated().map { n, subject in
            CheckRoutes.BatchResult(
                subject: subject, allowed: n % 2 == 0, reason: n % 3 == 0 ? "consent_granted" : "no_consent",
                category: n % 2 == 0 ? "utility" : "marketing",
                pricing: n % 5 == 4 ? nil : (billable: n % 4 == 0, category: n % 2 == 0 ? "utility" : nil))
        }
        let body = CheckRoutes.BatchView(results: results).json()
        let expected = try ConsentJSON.encoder.encode(
            Mirror(
                results: results.map {
                    .init(
                        subject: $0.subject, allowed: $0.allowed, reason: $0.reason, category: $0.category,
                        billable: $0.pricing?.billable, pricingCategory: $0.pricing?.category,
                        whatsapp: $0.pricing != nil)
                }))
        #expect(String(buffer: body) == String(decoding: expected, as: UTF8.self))
    }
}

/// The single check's answer is written by hand too; byte for byte the shared encoder's, in every state the
/// decision can produce.
@Suite struct CheckAnswerEncodingTests {
    @Test func matchesTheSharedEncoderInEveryState() throws {
        let now = Date(timeIntervalSince1970: 1_796_000_000.123)
        let inbound: [Date?] = [nil, now.addingTimeInterval(-3600), now.addingTimeInterval(-90_000)]
        let consents: [ConsentState] = [
            .none, .granted(id: UUID(), grantedAt: now.addingTimeInterval(-10)), .pending(id: UUID()),
            .withdrawn(id: UUID(), revokedAt: now.addingTimeInterval(-0.5)),
        ]
        var written = 0
        for channel in MessageChannel.allCases {
            for type in MessageType.allCases where type == .template || channel == .whatsapp {
                for category in PurposeCategory.allCases {
                    for lastInbound in inbound {
                        for entryPoint in [nil, now.addingTimeInterval(-60)] {
                            for consent in consents {
                                let question = try SendQuestion(
                                    channel: channel, messageType: type, purpose: "p", purposeCategory: category,
                                    at: now)
                                let decision = ConsentCheck.decide(
                                    question,
                                    facts: SubjectFacts(
                                        consent: consent, lastInboundAt: lastInbound, entryPointAt: entryPoint))
                                let view = CheckRoutes.CheckView(decision, consent: consent)
                                let expected = String(decoding: try ConsentJSON.encoder.encode(view), as: UTF8.self)
                                #expect(String(buffer: view.json()) == expected)
                                written += 1
                            }
                        }
                    }
                }
            }
        }
        #expect(written == (2 + 1 + 1) * 3 * 3 * 2 * 4)
    }
}

@Suite struct MethodNotAllowedTests {
    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let trace = try await acme.call(.trace, "/v1/reports/consents?from=2026-01-01T00:00:00Z", as: .dpo)
            #expect(
                try trace.status == .methodNotAllowed && trace.error.code == "method_not_allowed",
                "\(trace.status) \(trace.text)")
            #expect(trace.headers[.allow] == "GET")
            let put = try await acme.call(.put, "/v1/requests/\(UUID().uuidString)/complete", as: .dpo)
            #expect(put.status == .methodNotAllowed && put.headers[.allow] == "POST")
            let settings = try await acme.call(.delete, "/v1/settings/origins", as: .admin)
            #expect(settings.headers[.allow] == "GET, PUT")
            let unknown = try await acme.call(.get, "/v1/nothing/here", as: .admin)
            #expect(try unknown.status == .notFound && unknown.error.code == "not_found")
        }
    }
}

/// A request that is not answered in time is cut off with the contract's error shape, not left hanging.
@Suite struct RequestDeadlineTests {
    func withDeadlineApp(
        timeout: Duration, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let router = Router(context: ConsentRequestContext.self)
        router.add(middleware: ErrorShapingMiddleware())
        router.add(middleware: RequestDeadlineMiddleware(timeout: timeout))
        router.get("/probe/stuck") { _, _ -> HTTPResponse.Status in
            try await Task.sleep(for: .seconds(3600))
            return .noContent
        }
        router.get("/probe/quick") { _, _ -> HTTPResponse.Status in .noContent }
        try await Application(router: router).test(.router, body)
    }

    @Test func aStuckRequestGets503WithRetryAfter() async throws {
        try await withDeadlineApp(timeout: .milliseconds(200)) { client in
            let stuck = try await client.execute(uri: "/probe/stuck", method: .get)
            #expect(stuck.status == .serviceUnavailable)
            #expect(try stuck.error.code == "request_timeout")
            #expect(stuck.headers[.retryAfter] == "1")
        }
    }

    @Test func anAnsweredRequestPassesThrough() async throws {
        try await withDeadlineApp(timeout: .seconds(30)) { client in
            let quick = try await client.execute(uri: "/probe/quick", method: .get)
            #expect(quick.status == .noContent)
        }
    }
}
