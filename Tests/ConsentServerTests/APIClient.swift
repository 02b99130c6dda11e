import ConsentCore
import ConsentServer
import ConsentStore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO

/// JSON calls against the test router as a tenant's key of one scope.
struct APIClient: Sendable {
    let client: any TestClientProtocol
    let tenant: SeededTenant

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: Data

        var text: String { String(decoding: body, as: UTF8.self) }

        /// The body as a `T`; a body that is not one throws, with the status and the body, and fails the test.
        func decoded<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(T.self, from: body)
            } catch {
                throw UndecodableReply(expected: "\(T.self)", status: status.code, body: text, underlying: error)
            }
        }

        /// The contract's error body; a reply that is not one throws.
        var error: ErrorBody.Detail {
            get throws { try decoded(ErrorBody.self).error }
        }
    }

    func call(
        _ method: HTTPRequest.Method, _ uri: String, as scope: Scope, json: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = tenant.bearer(scope)
        headers.append(contentsOf: extra)
        if json != nil { headers[.contentType] = "application/json" }
        return try await client.execute(
            uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) }
        ) { response in
            Reply(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    func post(
        _ uri: String, as scope: Scope, _ body: [String: Any], idempotencyKey: String? = nil,
        method: HTTPRequest.Method = .post
    ) async throws -> Reply {
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        var headers: HTTPFields = [:]
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        return try await call(method, uri, as: scope, json: String(decoding: data, as: UTF8.self), headers: headers)
    }

    /// A request with no API key: the widget's, the self-service page's and the webhook's routes.
    func raw(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: String? = nil) async throws
        -> Reply
    {
        try await client.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        {
            response in Reply(status: response.status, headers: response.headers, body: Data(buffer: response.body))
        }
    }

    /// A notice on `channel` covering `purposes`; returns its id.
    func notice(_ channel: String = "whatsapp", purposes: [String], text: String = "Send me updates on WhatsApp.")
        async throws -> String
    {
        let reply = try await post(
            "/v1/notices", as: .admin, ["channel": channel, "language": "en", "text": text, "purposes": purposes])
        guard reply.status == .created else { throw Unexpected(reply.text) }
        return try reply.decoded(NoticeReply.self).id
    }

    /// A checkout a minute before the test run began, the same for every call so that a retried request is the
    /// same request. It is older than any stop a test makes: an opt-in after a stop needs `freshProvenance`.
    static let recently = RFC3339.format(
        Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 60).rounded(.down)))

    /// A checkout that happens now, after whatever the test did before (the server takes the earlier of this and
    /// the time it received the opt-in, so a clock a second ahead does not matter).
    static var freshProvenance: [String: Any] {
        var fresh = provenance
        fresh["collectedAt"] = RFC3339.format(Date().addingTimeInterval(1))
        return fresh
    }

    static var provenance: [String: Any] {
        [
            "pageUrl": "https://shop.example/checkout?step=3", "collectedAt": recently,
            "method": "checkbox",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0", "ipAddress": "203.0.113.7",
        ]
    }

    func optIn(
        _ subject: String, channel: String = "whatsapp", purposes: [String], noticeId: String,
        provenance: [String: Any] = APIClient.provenance, idempotencyKey: String? = nil
    ) async throws -> Reply {
        try await post(
            "/v1/consents", as: .consentWrite,
            [
                "subject": subject, "channel": channel, "purposes": purposes, "noticeId": noticeId,
                "provenance": provenance,
            ],
            idempotencyKey: idempotencyKey)
    }

    func check(_ subject: String, channel: String = "whatsapp", purpose: String, messageType: String? = nil)
        async throws -> Reply
    {
        var body: [String: Any] = ["subject": subject, "channel": channel, "purpose": purpose]
        if let messageType { body["messageType"] = messageType }
        return try await post("/v1/checks", as: .consentCheck, body)
    }

    struct Unexpected: Error, CustomStringConvertible {
        let body: String
        init(_ body: String) { self.body = body }
        var description: String { "unexpected reply: \(body)" }
    }
}

/// Runs `body` with the app and one API client per tenant.
func withTenants(
    _ names: [String], subjectRights: SubjectRightsPolicy = .default, collection: CollectionPolicy = .default,
    checkCache: ConsentStateCache? = nil, checkClock: (@Sendable () -> Date)? = nil,
    _ body: @escaping @Sendable ([APIClient], TestDatabase) async throws -> Void
) async throws {
    let database = try await TestDatabase.fresh()
    var tenants: [SeededTenant] = []
    for name in names { tenants.append(try await SeededTenant.make(name, in: database)) }
    let seeded = tenants
    try await withRunningApp(
        database, subjectRights: subjectRights, checkCache: checkCache, collection: collection, checkClock: checkClock
    ) { client in
        try await body(seeded.map { APIClient(client: client, tenant: $0) }, database)
    }
}

/// `withApp`, except that an error `body` throws reaches the test only after the app has stopped as it does when
/// `body` returns. Thrown straight through `withApp`, the error also cancels the app's services, and once the app has
/// served a request that never finishes: the test process hangs instead of reporting the failure.
func withRunningApp<Value: Sendable>(
    _ database: TestDatabase, subjectRights: SubjectRightsPolicy = .default, checkCache: ConsentStateCache? = nil,
    masterKey: SecretBytes = .random32(), collection: CollectionPolicy = .default, rateLimits: RateLimits = .default,
    checkClock: (@Sendable () -> Date)? = nil, poolSize: Int = 20, live: Bool = false,
    configure: (inout ServerDependencies) -> Void = { _ in },
    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let outcome: Result<Value, any Error> = try await withApp(
        database, subjectRights: subjectRights, checkCache: checkCache, masterKey: masterKey, collection: collection,
        rateLimits: rateLimits, checkClock: checkClock, poolSize: poolSize, live: live, configure: configure
    ) { client in
        do { return .success(try await body(client)) } catch { return .failure(error) }
    }
    return try outcome.get()
}

extension TestDatabase {
    /// Row counts of the tables a refused write must leave alone.
    func footprint() async throws -> [Int] {
        var counts: [Int] = []
        for table in [
            "subjects", "subject_keys", "collections", "consents", "consent_evidence", "interactions",
            "audit_events", "notices", "idempotency_keys", "purposes", "suppressions", "subject_requests",
            "consent_sessions", "whatsapp_messages_seen", "tenant_settings",
        ] {
            counts.append(try await count("SELECT count(*)::int8 FROM \(table)"))
        }
        return counts
    }
}

/// Two instances of the app on one database, each with its check cache listening to the change log, sharing the
/// master key as a deployment's instances do; `body` gets a client of the same tenant on each, and the database.
func withTwoCachedInstances(
    _ tenantName: String, _ body: @escaping @Sendable (APIClient, APIClient, TestDatabase) async throws -> Void
) async throws {
    let database = try await TestDatabase.fresh()
    let tenant = try await SeededTenant.make(tenantName, in: database)
    let (first, second) = (ConsentStateCache(capacity: 1000), ConsentStateCache(capacity: 1000))
    let masterKey = SecretBytes.random32()
    try await withRunningApp(database, checkCache: first, masterKey: masterKey) { one in
        try await withRunningApp(database, checkCache: second, masterKey: masterKey) { other in
            try await CheckCacheTests.untilListening(first)
            try await CheckCacheTests.untilListening(second)
            try await body(APIClient(client: one, tenant: tenant), APIClient(client: other, tenant: tenant), database)
        }
    }
}
