import ConsentCore
import ConsentTesting
import Foundation
import PostgresNIO
import Testing

@Suite struct CatalogueTests {
    struct PurposeList: Decodable {
        struct Item: Decodable, Equatable {
            let key: String
            let name: String
            let category: String
            let builtIn: Bool
        }
        let purposes: [Item]
    }

    @Test func everyScopeSeesTheBuiltInsAndItsOwnPurposes() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            for scope in Scope.allCases {
                let reply = try await acme.call(.get, "/v1/purposes", as: scope)
                #expect(reply.status == .ok)
                let items = try reply.decoded(PurposeList.self).purposes
                #expect(items.map(\.key) == Purpose.builtIns.map(\.key))
                #expect(items.allSatisfy { $0.builtIn })
            }
            let builtIns = try await acme.call(.get, "/v1/purposes", as: .consentCheck).decoded(PurposeList.self)
                .purposes
            let contract: [String: String] = [
                "account_update": "utility", "payment_update": "utility", "shipping_update": "utility",
                "personal_finance_update": "utility", "reservation_update": "utility", "appointment_update": "utility",
                "transportation_update": "utility", "ticket_update": "utility", "alert_update": "utility",
                "issue_resolution": "utility", "marketing": "marketing", "authentication": "authentication",
            ]
            #expect(Dictionary(uniqueKeysWithValues: builtIns.map { ($0.key, $0.category) }) == contract)

            let created = try await acme.call(
                .put, "/v1/purposes/loyalty_points", as: .admin,
                json: #"{"name": "Loyalty points", "category": "marketing"}"#)
            #expect(created.status == .created)
            #expect(
                try created.decoded(PurposeList.Item.self)
                    == .init(key: "loyalty_points", name: "Loyalty points", category: "marketing", builtIn: false))
            let renamed = try await acme.call(
                .put, "/v1/purposes/loyalty_points", as: .admin, json: #"{"name": "Points", "category": "marketing"}"#)
            #expect(renamed.status == .ok)
            let mine = try await acme.call(.get, "/v1/purposes", as: .dpo).decoded(PurposeList.self).purposes
            #expect(mine.last == .init(key: "loyalty_points", name: "Points", category: "marketing", builtIn: false))
            #expect(mine.count == 13)
            let theirs = try await globex.call(.get, "/v1/purposes", as: .dpo).decoded(PurposeList.self).purposes
            #expect(theirs.count == 12, "another tenant's purpose is invisible")
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'purpose.%'") == 2)
        }
    }

    @Test func definingPurposesIsGuarded() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let before = try await database.footprint()
            let cases: [(String, String, Scope, Int, String)] = [
                (
                    "/v1/purposes/marketing", #"{"name": "Mine", "category": "marketing"}"#, .admin, 409,
                    "built_in_purpose"
                ),
                (
                    "/v1/purposes/loyalty", #"{"name": "Loyalty", "category": "promotions"}"#, .admin, 422,
                    "invalid_field"
                ),
                ("/v1/purposes/loyalty", #"{"name": "Loyalty"}"#, .admin, 422, "invalid_field"),
                ("/v1/purposes/loyalty", #"{"name": "  ", "category": "utility"}"#, .admin, 422, "invalid_field"),
                ("/v1/purposes/Loyalty-Points", #"{"name": "L", "category": "utility"}"#, .admin, 422, "invalid_field"),
                (
                    "/v1/purposes/loyalty", #"{"name": "Loyalty", "category": "utility"}"#, .consentWrite, 403,
                    "forbidden"
                ),
                ("/v1/purposes/loyalty", #"{"name": "#, .admin, 400, "malformed_json"),
            ]
            for (uri, body, scope, status, code) in cases {
                let reply = try await acme.call(.put, uri, as: scope, json: body)
                #expect(reply.status.code == status, "\(uri) \(body)")
                #expect(try reply.error.code == code, "\(uri) \(body): \(reply.text)")
            }
            #expect(try await database.footprint() == before)
        }
    }

    @Test func noticesAreVersionedImmutableAndHashed() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let text = "Sì, inviatemi aggiornamenti sulla spedizione su WhatsApp. ✓"
            let body: [String: Any] = [
                "channel": "whatsapp", "language": "it", "text": text, "purposes": ["shipping_update", "marketing"],
            ]
            let first = try await acme.post("/v1/notices", as: .admin, body)
            #expect(first.status == .created)
            let created = try first.decoded(NoticeReply.self)
            #expect(created.textSha256 == NoticeText.sha256Hex(text))
            #expect(created.version == 1)
            #expect(created.text == text)
            #expect(created.purposes == ["shipping_update", "marketing"])
            let second = try await acme.post("/v1/notices", as: .admin, body.merging(["text": text + " v2"]) { $1 })
            #expect(try second.decoded(NoticeReply.self).version == 2)
            let english = try await acme.post("/v1/notices", as: .admin, body.merging(["language": "en"]) { $1 })
            #expect(try english.decoded(NoticeReply.self).version == 1)

            let id = created.id
            let fetched = try await acme.call(.get, "/v1/notices/\(id)", as: .admin)
            #expect(try fetched.status == .ok && fetched.decoded(NoticeReply.self).text == text)
            let list = try await acme.call(.get, "/v1/notices", as: .admin)
            #expect(try list.decoded(NoticeListReply.self).notices.count == 3)
            #expect(try await globex.call(.get, "/v1/notices/\(id)", as: .admin).status == .notFound)
            #expect(
                try await globex.call(.get, "/v1/notices", as: .admin).decoded(NoticeListReply.self).notices.count == 0)
            #expect(try await acme.call(.get, "/v1/notices/\(id)", as: .consentWrite).status == .forbidden)
            #expect(try await acme.call(.get, "/v1/notices/not-a-uuid", as: .admin).status == .notFound)

            // Immutable in the database itself, even for a superuser past row-level security.
            for sql in ["UPDATE notices SET text = 'rewritten'", "DELETE FROM notices", "TRUNCATE notices CASCADE"] {
                let refused = try await database.withClient(\.superuser) { client in
                    do {
                        try await client.query(PostgresQuery(unsafeSQL: sql))
                        return false
                    } catch { return true }
                }
                #expect(refused, "\(sql)")
            }
            #expect(
                try await database.count("SELECT count(*)::int8 FROM notices WHERE text NOT LIKE '%rewritten%'") == 3)
        }
    }

    @Test func badNoticesChangeNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let good: [String: Any] = [
                "channel": "sms", "language": "en", "text": "Texts about orders", "purposes": ["shipping_update"],
            ]
            let cases: [([String: Any], String, String)] = [
                (
                    good.merging(["purposes": ["shipping_update", "no_such_purpose"]]) { $1 }, "unknown_purpose",
                    "purposes"
                ),
                (good.merging(["purposes": [String]()]) { $1 }, "invalid_field", "purposes"),
                (good.merging(["purposes": ["marketing", "marketing"]]) { $1 }, "invalid_field", "purposes"),
                (good.merging(["channel": "fax"]) { $1 }, "invalid_field", "channel"),
                (good.merging(["language": "english please"]) { $1 }, "invalid_field", "language"),
                (good.merging(["text": ""]) { $1 }, "invalid_field", "text"),
                (good.merging(["text": String(repeating: "x", count: 20_001)]) { $1 }, "invalid_field", "text"),
            ]
            let before = try await database.footprint()
            for (body, code, field) in cases {
                let reply = try await acme.post("/v1/notices", as: .admin, body)
                #expect(reply.status == .unprocessableContent, "\(body)")
                #expect(try reply.error.code == code && reply.error.field == field, "\(reply.text)")
            }
            #expect(try await database.footprint() == before)
        }
    }
}
