import ConsentCore
import ConsentStore
import Foundation
import Hummingbird

/// May this message be sent now? The store finds the state in one round trip; `ConsentCheck.decide` decides.
struct CheckRoutes {
    let lookup: ConsentLookup
    let metrics: ServiceMetrics

    static let maxBatch = 10_000

    /// The full paths of the check routes, which the request deadline leaves to `ConsentLookup`'s own.
    static let paths: Set<String> = ["/v1/checks", "/v1/checks/batch"]

    func register(on group: RouterGroup<ConsentRequestContext>) {
        group.post("/checks") { request, context in try await check(request, context: context) }
        group.post("/checks/batch") { request, context in try await batch(request, context: context) }
    }

    struct CheckBody: FlatJSONDecodable {
        let subject: String
        let channel: String
        let purpose: String
        let messageType: String?
        let consistencyToken: String?

        init?(members: [String: String?]) {
            guard case .some(.some(let subject)) = members["subject"],
                case .some(.some(let channel)) = members["channel"],
                case .some(.some(let purpose)) = members["purpose"]
            else { return nil }
            self.subject = subject
            self.channel = channel
            self.purpose = purpose
            messageType = members["messageType"] ?? nil
            consistencyToken = members["consistencyToken"] ?? nil
        }
    }

    /// Written by hand (`json()`); `Encodable` for the test that compares it with the shared encoder.
    struct CheckView: Encodable, ResponseGenerator {
        let allowed: Bool
        let reason: String
        let consentId: String?
        let grantedAt: Date?
        let revokedAt: Date?
        let serviceWindow: ServiceWindowView
        let billable: Bool

        func response(from request: Request, context: some RequestContext) throws -> Response {
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json())
            )
        }

        func json() -> ByteBuffer {
            var json = ByteBuffer()
            json.reserveCapacity(256)
            json.writeStaticString(allowed ? #"{"allowed":true,"billable":"# : #"{"allowed":false,"billable":"#)
            json.writeStaticString(billable ? "true" : "false")
            if let consentId {
                json.writeStaticString(#","consentId":"#)
                JSONWriter.writeString(consentId, to: &json)
            }
            if let grantedAt {
                json.writeStaticString(#","grantedAt":"#)
                JSONWriter.writeTime(grantedAt, to: &json)
            }
            json.writeStaticString(#","reason":"#)
            JSONWriter.writeString(reason, to: &json)
            if let revokedAt {
                json.writeStaticString(#","revokedAt":"#)
                JSONWriter.writeTime(revokedAt, to: &json)
            }
            json.writeStaticString(#","serviceWindow":{"#)
            if let closesAt = serviceWindow.closesAt {
                json.writeStaticString(#""closesAt":"#)
                JSONWriter.writeTime(closesAt, to: &json)
                json.writeStaticString(",")
            }
            json.writeStaticString(serviceWindow.open ? #""open":true}}"# : #""open":false}}"#)
            return json
        }
    }

    func check(_ request: Request, context: ConsentRequestContext) async throws -> CheckView {
        let caller = try context.caller(requiring: .consentCheck)
        let body = try await request.decodeJSON(CheckBody.self, context: context)
        let channel = try Input.channel(body.channel)
        let subject = try Input.subject(body.subject, channel: channel)
        let purpose = try Input.purpose(body.purpose)
        let messageType = try Input.messageType(body.messageType)
        // A token newer than what the cache holds for the subject reads through to the database, which has the
        // write: the client only has the token once the write committed.
        let token = try Input.consistencyToken(body.consistencyToken)
        let state =
            try await lookup.states(
                of: [subject], channel: channel, purpose: purpose, tenantId: caller.tenantId,
                minimumPosition: token?.position ?? 0, logger: context.logger
            ).first ?? nil
        let now = Date()
        let consent = state?.consent ?? .none
        let window = state?.window ?? ServiceWindow(lastInboundAt: nil)
        let decision = ConsentCheck.decide(consent: consent, window: window, messageType: messageType, now: now)
        metrics.recordDecision(decision.reason)
        var (consentId, grantedAt, revokedAt): (UUID?, Date?, Date?) = (nil, nil, nil)
        switch consent {
        case .none: break
        case .granted(let id, let at): (consentId, grantedAt) = (id, at)
        case .pending(let id): consentId = id
        case .withdrawn(let id, let at): (consentId, revokedAt) = (id, at)
        }
        return CheckView(
            allowed: decision.allowed, reason: decision.reason.rawValue, consentId: consentId?.lowercased,
            grantedAt: grantedAt, revokedAt: revokedAt, serviceWindow: ServiceWindowView(window, now: now),
            billable: decision.billable)
    }

    struct BatchBody: Decodable {
        let channel: String
        let purpose: String
        let subjects: [String]
        let messageType: String?
        let consistencyToken: String?
    }

    struct BatchResult {
        let subject: String
        let allowed: Bool
        let reason: String
        let billable: Bool
    }

    /// Written by hand (`JSONWriter`).
    struct BatchView: ResponseGenerator {
        let results: [BatchResult]

        func response(from request: Request, context: some RequestContext) throws -> Response {
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: json())
            )
        }

        func json() -> ByteBuffer {
            var json = ByteBuffer()
            json.reserveCapacity(32 + results.count * 96)
            json.writeStaticString(#"{"results":["#)
            for (n, result) in results.enumerated() {
                if n > 0 { json.writeStaticString(",") }
                json.writeStaticString(
                    result.allowed ? #"{"allowed":true,"billable":"# : #"{"allowed":false,"billable":"#)
                json.writeStaticString(result.billable ? #"true,"reason":"# : #"false,"reason":"#)
                JSONWriter.writeString(result.reason, to: &json)
                json.writeStaticString(#","subject":"#)
                JSONWriter.writeString(result.subject, to: &json)
                json.writeStaticString("}")
            }
            json.writeStaticString("]}")
            return json
        }
    }

    func batch(_ request: Request, context: ConsentRequestContext) async throws -> BatchView {
        let caller = try context.caller(requiring: .consentCheck)
        let body = try await request.decodeJSON(BatchBody.self, context: context)
        let channel = try Input.channel(body.channel)
        let purpose = try Input.purpose(body.purpose)
        let messageType = try Input.messageType(body.messageType)
        let token = try Input.consistencyToken(body.consistencyToken)
        guard !body.subjects.isEmpty else { throw APIError.invalid("subjects", "'subjects' must not be empty") }
        guard body.subjects.count <= Self.maxBatch else {
            throw APIError(
                .unprocessableContent, code: "too_many_subjects",
                message: "a batch holds at most \(Self.maxBatch) subjects; split the list", field: "subjects")
        }
        var subjects: [SubjectIdentifier] = []
        subjects.reserveCapacity(body.subjects.count)
        for (index, raw) in body.subjects.enumerated() {
            subjects.append(try Input.subject(raw, channel: channel, field: "subjects[\(index)]"))
        }
        let states = try await lookup.states(
            of: subjects, channel: channel, purpose: purpose, tenantId: caller.tenantId,
            minimumPosition: token?.position ?? 0, logger: context.logger)
        let now = Date()
        let results = zip(body.subjects, states).map { raw, state in
            let decision = ConsentCheck.decide(
                consent: state?.consent ?? .none, window: state?.window ?? ServiceWindow(lastInboundAt: nil),
                messageType: messageType, now: now)
            return (
                decision.reason,
                BatchResult(
                    subject: raw, allowed: decision.allowed, reason: decision.reason.rawValue,
                    billable: decision.billable)
            )
        }
        for (reason, count) in Dictionary(results.map { ($0.0, 1) }, uniquingKeysWith: +) {
            metrics.recordDecision(reason, count: count)
        }
        return BatchView(results: results.map(\.1))
    }
}
