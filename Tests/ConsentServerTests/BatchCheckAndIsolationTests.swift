import ConsentCore
import ConsentTesting
import Foundation
import LocalPostgres
import Testing

@Suite struct BatchCheckTests {
    @Test func answersInTheOrderGivenWithDuplicates() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393331234567", purposes: ["shipping_update"], noticeId: notice)
            _ = try await acme.optIn("+447700900123", purposes: ["shipping_update"], noticeId: notice)
            _ = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+447700900123", "channel": "whatsapp"])
            let subjects = ["+15550000001", "+39 333 123 4567", "+447700900123", "+393331234567", "+15550000001"]
            let reply = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                ["channel": "whatsapp", "purpose": "shipping_update", "subjects": subjects])
            #expect(reply.status == .ok, "\(reply.text)")
            let results = try reply.decoded(BatchCheckReply.self).results
            #expect(
                results == [
                    .init(subject: "+15550000001", allowed: false, reason: "no_consent"),
                    .init(subject: "+39 333 123 4567", allowed: true, reason: "consent_granted"),
                    .init(subject: "+447700900123", allowed: false, reason: "consent_withdrawn"),
                    .init(subject: "+393331234567", allowed: true, reason: "consent_granted"),
                    .init(subject: "+15550000001", allowed: false, reason: "no_consent"),
                ])
        }
    }

    @Test func tenThousandSubjectsInOneRequestAndNoMore() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            _ = try await acme.optIn("+393330000042", purposes: ["shipping_update"], noticeId: notice)
            let subjects = (0..<10_000).map { "+39333" + String(format: "%07d", $0) }
            let reply = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                ["channel": "whatsapp", "purpose": "shipping_update", "subjects": subjects])
            #expect(reply.status == .ok)
            let results = try reply.decoded(BatchCheckReply.self).results
            #expect(results.count == 10_000)
            #expect(results.map(\.subject) == subjects)
            #expect(results.indices.filter { results[$0].allowed } == [42])

            let tooMany = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                ["channel": "whatsapp", "purpose": "shipping_update", "subjects": subjects + ["+393339999999"]])
            #expect(try tooMany.status == .unprocessableContent && tooMany.error.code == "too_many_subjects")
        }
    }

    @Test func badBatchesAreRefused() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let cases: [([String: Any], String, String)] = [
                (
                    ["channel": "whatsapp", "purpose": "shipping_update", "subjects": ["+393331234567", "12"]],
                    "invalid_field", "subjects[1]"
                ),
                (
                    ["channel": "whatsapp", "purpose": "no_such_purpose", "subjects": ["+393331234567"]],
                    "unknown_purpose", "purpose"
                ),
                (
                    ["channel": "whatsapp", "purpose": "shipping_update", "subjects": [String]()], "invalid_field",
                    "subjects"
                ),
                (
                    ["channel": "telex", "purpose": "shipping_update", "subjects": ["+393331234567"]], "invalid_field",
                    "channel"
                ),
                (
                    [
                        "channel": "whatsapp", "purpose": "shipping_update", "subjects": ["+393331234567"],
                        "messageType": "fax",
                    ], "invalid_field", "messageType"
                ),
            ]
            for (body, code, field) in cases {
                let reply = try await acme.post("/v1/checks/batch", as: .consentCheck, body)
                #expect(
                    try reply.status == .unprocessableContent && reply.error.code == code && reply.error.field == field,
                    "\(reply.text)")
            }
            let single = try await acme.post(
                "/v1/checks", as: .consentCheck,
                [
                    "subject": "+393331234567", "channel": "whatsapp", "purpose": "shipping_update",
                    "consistencyToken": "latest",
                ])
            #expect(try single.error.field == "consistencyToken")
            let unknownPurpose = try await acme.check("+393331234567", purpose: "no_such_purpose")
            #expect(
                try unknownPurpose.status == .unprocessableContent && unknownPurpose.error.code == "unknown_purpose")
            let wrongScope = try await acme.post(
                "/v1/checks", as: .consentWrite,
                ["subject": "+393331234567", "channel": "whatsapp", "purpose": "marketing"])
            #expect(wrongScope.status == .forbidden)
        }
    }

    @Test func aCheckWithAWritesTokenReflectsTheWrite() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            let optIn = try await acme.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            let granted = try optIn.decoded(OptInReply.self).consistencyToken
            let afterGrant = try await acme.post(
                "/v1/checks", as: .consentCheck,
                [
                    "subject": "+393331234567", "channel": "whatsapp", "purpose": "marketing",
                    "consistencyToken": granted,
                ])
            #expect(try afterGrant.decoded(CheckReply.self).allowed == true)
            let revocation = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393331234567", "channel": "whatsapp"])
            let revoked = try revocation.decoded(RevocationReply.self).consistencyToken
            #expect(ConsistencyToken(parsing: revoked)! > ConsistencyToken(parsing: granted)!)
            let afterRevoke = try await acme.post(
                "/v1/checks/batch", as: .consentCheck,
                [
                    "subjects": ["+393331234567"], "channel": "whatsapp", "purpose": "marketing",
                    "consistencyToken": revoked,
                ])
            #expect(try afterRevoke.decoded(BatchCheckReply.self).results.first?.reason == "consent_withdrawn")
        }
    }
}

@Suite struct TenantIsolationTests {
    @Test func anotherTenantsSubjectsAndNoticesAreUnknown() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let notice = try await acme.notice(purposes: ["marketing"])
            _ = try await acme.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            _ = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": "+393331234567", "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339Text.format(Date()),
                ])

            let check = try await globex.check("+393331234567", purpose: "marketing").decoded(CheckReply.self)
            #expect(check.reason == "no_consent")
            #expect(try check.serviceWindow.open == false)
            let revoke = try await globex.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393331234567", "channel": "whatsapp"])
            #expect(try revoke.status == .ok && revoke.decoded(RevocationReply.self).revoked.isEmpty)
            let borrow = try await globex.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            #expect(try borrow.error.code == "unknown_notice")
            #expect(
                try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self).allowed == true)
            // Each tenant's blind index has its own key: the same person is not linkable across tenants.
            _ = try await globex.optIn(
                "+393331234567", purposes: ["marketing"], noticeId: try await globex.notice(purposes: ["marketing"]))
            #expect(try await database.count("SELECT count(DISTINCT blind_index)::int8 FROM subjects") == 2)
        }
    }
}

@Suite struct DataProtectionTests {
    @Test func aDatabaseDumpHoldsNoPersonalDataInPlaintext() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let whatsapp = try await acme.notice(purposes: ["shipping_update"])
            let email = try await acme.notice("email", purposes: ["marketing"])
            let provenance: [String: Any] = [
                "pageUrl": "https://shop.example/checkout/ord-77812", "collectedAt": "2026-11-20T10:00:00Z",
                "method": "checkbox", "userAgent": "Mozilla/5.0 (Quokka; Secret-UA-7781)", "ipAddress": "198.51.100.23",
            ]
            _ = try await acme.optIn(
                "+39 333 765 4321", purposes: ["shipping_update"], noticeId: whatsapp, provenance: provenance)
            _ = try await acme.optIn(
                "Anna.Rossi@Example.COM", channel: "email", purposes: ["marketing"], noticeId: email,
                provenance: provenance.merging(["ipAddress": "2001:db8::4242"]) { $1 })
            _ = try await acme.post(
                "/v1/interactions", as: .consentWrite,
                [
                    "subject": "+393337654321", "channel": "whatsapp", "direction": "inbound",
                    "occurredAt": RFC3339Text.format(Date()), "text": "My flat is at Via Roma 12",
                ])

            let dump = try DatabaseDump.plainSQL(database.superuser)
            #expect(dump.contains("COPY public.consents"), "the dump has the data")
            #expect(dump.contains("shipping_update"))
            for secret in [
                "3337654321", "333 765 4321", "Anna.Rossi", "anna.rossi", "example.com", "198.51.100.23",
                "2001:db8::4242",
                "Secret-UA-7781", "Quokka", "ord-77812", "shop.example", "Via Roma",
            ] {
                #expect(!dump.contains(secret), "plaintext '\(secret)' in the dump")
            }
        }
    }
}
