import ConsentCore
import ConsentTesting
import Foundation
import Testing

/// Free texts as the OpenAPI document states them. Its `minLength` and `maxLength` count Unicode code points, as
/// JSON Schema does, and so does the service: a text the document allows is never refused for its bytes, nor a short
/// one let through (schemathesis found an app secret of 8 two-byte characters taken for 16). A NUL, which
/// PostgreSQL's text cannot hold, is a 422 that names the field, not a failed statement (schemathesis found a 500).
@Suite struct TextFieldTests {
    /// Two bytes of UTF-8 each, one code point each.
    static func text(_ count: Int) -> String { String(repeating: "é", count: count) }

    @Test func lengthsAreCountedInCharactersNotBytes() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            func status(_ reply: APIClient.Reply) -> Int { reply.status.code }

            let shortSecret = try await acme.post(
                "/v1/settings/whatsapp", as: .admin, ["appSecret": Self.text(8), "verifyToken": "t"], method: .put)
            #expect(try status(shortSecret) == 422 && shortSecret.error.field == "appSecret", "\(shortSecret.text)")
            let secret = try await acme.post(
                "/v1/settings/whatsapp", as: .admin, ["appSecret": Self.text(16), "verifyToken": Self.text(256)],
                method: .put)
            #expect(status(secret) == 200, "\(secret.text)")
            let longToken = try await acme.post(
                "/v1/settings/whatsapp", as: .admin, ["appSecret": Self.text(16), "verifyToken": Self.text(257)],
                method: .put)
            #expect(try status(longToken) == 422 && longToken.error.field == "verifyToken")

            let name = try await acme.call(
                .put, "/v1/purposes/loyalty", as: .admin, json: #"{"name":"\#(Self.text(200))","category":"utility"}"#)
            #expect((200...201).contains(status(name)), "\(name.text)")
            let longName = try await acme.call(
                .put, "/v1/purposes/loyalty", as: .admin, json: #"{"name":"\#(Self.text(201))","category":"utility"}"#)
            #expect(try status(longName) == 422 && longName.error.field == "name")

            let message = [
                "subject": "+393331009001", "channel": "whatsapp", "direction": "inbound",
                "occurredAt": RFC3339.format(Date()),
            ]
            let text = try await acme.post(
                "/v1/interactions", as: .consentWrite, message.merging(["text": Self.text(4096)]) { $1 })
            #expect(status(text) == 201, "\(text.text)")
            let longText = try await acme.post(
                "/v1/interactions", as: .consentWrite, message.merging(["text": Self.text(4097)]) { $1 })
            #expect(try status(longText) == 422 && longText.error.field == "text")

            let notice = try await acme.notice(purposes: ["shipping_update"])
            var provenance = APIClient.provenance
            provenance["userAgent"] = Self.text(1024)
            let agent = try await acme.optIn(
                "+393331009002", purposes: ["shipping_update"], noticeId: notice, provenance: provenance)
            #expect(status(agent) == 201, "\(agent.text)")
            provenance["userAgent"] = Self.text(1025)
            let longAgent = try await acme.optIn(
                "+393331009003", purposes: ["shipping_update"], noticeId: notice, provenance: provenance)
            #expect(
                try status(longAgent) == 422 && longAgent.error.field == "provenance.userAgent", "\(longAgent.text)")
        }
    }

    @Test func aNulCharacterIsRefusedAndNamedBeforeAnythingIsStored() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let before = try await database.footprint()
            let notice = try await acme.post(
                "/v1/notices", as: .admin,
                [
                    "channel": "whatsapp", "language": "it", "text": "Aggiornamenti\u{0} sugli ordini",
                    "purposes": ["shipping_update"],
                ])
            #expect(try notice.status.code == 422 && notice.error.field == "text", "\(notice.text)")
            let name = try await acme.post(
                "/v1/purposes/loyalty", as: .admin, ["name": "Loyalty\u{0}", "category": "utility"], method: .put)
            #expect(try name.status.code == 422 && name.error.field == "name", "\(name.text)")
            let secret = try await acme.post(
                "/v1/settings/whatsapp", as: .admin, ["appSecret": "0123456789abcdef\u{0}", "verifyToken": "t"],
                method: .put)
            #expect(try secret.status.code == 422 && secret.error.field == "appSecret", "\(secret.text)")
            #expect(try await database.footprint() == before)
        }
    }
}
