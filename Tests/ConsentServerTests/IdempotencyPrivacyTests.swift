import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

/// Issue 21, finding 5: an idempotency record says nothing about the person. Before the fix the hash was an
/// unkeyed SHA-256 of the body (the same in every tenant for the same body), erasure left the records, and a
/// consent session's token was kept for the replay.
@Suite struct IdempotencyPrivacyTests {
    static let anna = "+393331234567"
    static let bruno = "+393339876543"

    @Test func theRequestHashIsKeyedPerTenantAndTakesNoIdentifier() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            for tenant in tenants {
                let reply = try await tenant.post(
                    "/v1/revocations", as: .consentWrite, ["subject": Self.anna, "channel": "whatsapp"],
                    idempotencyKey: "stop-1")
                #expect(reply.status == .ok, "\(reply.text)")
            }
            #expect(try await database.count("SELECT count(*)::int8 FROM idempotency_keys WHERE key = 'stop-1'") == 2)
            #expect(
                try await database.count(
                    "SELECT count(DISTINCT request_hash)::int8 FROM idempotency_keys WHERE key = 'stop-1'") == 2,
                "the same body under two tenants must hash apart: the hash is keyed")
            // What the hash was before: SHA-256 of the operation, a zero byte and the sorted body.
            let unkeyed =
                "sha256(convert_to('POST /v1/revocations', 'UTF8') || '\\x00'::bytea || convert_to("
                + "'{\"channel\":\"whatsapp\",\"subject\":\"\(Self.anna)\"}', 'UTF8'))"
            #expect(
                try await database.count("SELECT count(*)::int8 FROM idempotency_keys WHERE request_hash = \(unkeyed)")
                    == 0)

            // A retry with the identifier written another way is the same person, so the same request.
            let retry = try await tenants[0].post(
                "/v1/revocations", as: .consentWrite, ["subject": "0039 333 123 4567", "channel": "whatsapp"],
                idempotencyKey: "stop-1")
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true", "\(retry.text)")
            let someoneElse = try await tenants[0].post(
                "/v1/revocations", as: .consentWrite, ["subject": Self.bruno, "channel": "whatsapp"],
                idempotencyKey: "stop-1")
            #expect(try someoneElse.error.code == "idempotency_key_reused")
        }
    }

    @Test func erasureDeletesTheRecordsThatNameThePersonAndKeepsItsOwn() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            for (subject, key) in [(Self.anna, "anna-1"), (Self.bruno, "bruno-1")] {
                let reply = try await acme.optIn(
                    subject, purposes: ["shipping_update"], noticeId: notice, idempotencyKey: key)
                #expect(reply.status == .created, "\(reply.text)")
            }
            let objection = try await acme.post(
                "/v1/objections", as: .consentWrite,
                ["subjects": [["subject": Self.anna, "channel": "whatsapp"]], "scope": "marketing"],
                idempotencyKey: "anna-2")
            #expect(objection.status == .ok, "\(objection.text)")
            let request = try await acme.post(
                "/v1/requests", as: .dpo, ["type": "access", "subject": Self.anna, "channel": "whatsapp"],
                idempotencyKey: "anna-3")
            #expect(request.status == .created, "\(request.text)")
            #expect(try await database.count("SELECT count(*)::int8 FROM idempotency_keys") == 4)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM idempotency_keys WHERE cardinality(subject_refs) = 1")
                    == 4, "each record names its person")

            let erased = try await acme.post(
                "/v1/subjects/erase", as: .dpo, ["subject": Self.anna, "channel": "whatsapp"],
                idempotencyKey: "erase-anna")
            #expect(erased.status == .ok, "\(erased.text)")
            #expect(try await database.count("SELECT count(*)::int8 FROM idempotency_keys") == 2)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM idempotency_keys WHERE key IN ('bruno-1', 'erase-anna')") == 2,
                "Anna's records go with her; Bruno's stay")
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM idempotency_keys WHERE key = 'erase-anna' AND subject_refs = '{}'")
                    == 1, "the erasure's own record names nobody")

            let retried = try await acme.post(
                "/v1/subjects/erase", as: .dpo, ["subject": Self.anna, "channel": "whatsapp"],
                idempotencyKey: "erase-anna")
            #expect(retried.body == erased.body)
            #expect(retried.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
        }
    }

    @Test func aConsentSessionTokenIsNeverStoredAndItsReplayIsRefused() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let body: [String: Any] = [
                "subject": Self.anna, "channel": "whatsapp", "noticeId": notice,
                "pageUrl": "https://shop.example/checkout",
            ]
            let opened = try await acme.post(
                "/v1/consent-sessions", as: .consentWrite, body, idempotencyKey: "session-1")
            #expect(opened.status == .created, "\(opened.text)")
            let token = try opened.decoded(ConsentSessionOpenedReply.self).token
            #expect(
                try await database.count(
                    """
                    SELECT count(*)::int8 FROM idempotency_keys
                    WHERE position(convert_to(\(DatabaseText.literal(token)), 'UTF8') IN coalesce(response, '')) > 0
                    """) == 0, "the token is not in the stored response")
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM idempotency_keys WHERE key = 'session-1' AND replay_withheld") == 1)

            let sessionsBefore = try await database.count("SELECT count(*)::int8 FROM consent_sessions")
            let replay = try await acme.post(
                "/v1/consent-sessions", as: .consentWrite, body, idempotencyKey: "session-1")
            #expect(replay.status == .conflict)
            #expect(try replay.error.code == "idempotent_replay_withheld")
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_sessions") == sessionsBefore)
            // The token sent once still works.
            let page = try await acme.raw(.get, "/v1/consent-sessions/\(token)", headers: [:], body: nil)
            #expect(page.status == .ok, "\(page.text)")
        }
    }
}

/// A string as an SQL literal, for the tests' hand-written statements.
enum DatabaseText {
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }
}
