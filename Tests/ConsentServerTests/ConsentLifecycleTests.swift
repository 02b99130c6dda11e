import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

@Suite struct OptInTests {
    @Test func optInThenChecksAnswerWithReasonAndEvidence() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            let reply = try await acme.optIn(
                "+39 333 123 4567", purposes: ["shipping_update", "marketing"], noticeId: notice)
            #expect(reply.status == .created, "\(reply.text)")
            let optIn = try reply.decoded(OptInReply.self)
            let consents = optIn.consents
            #expect(consents.map(\.purpose) == ["shipping_update", "marketing"])
            #expect(consents.allSatisfy { $0.status == "granted" && $0.grantedAt != nil })
            #expect(optIn.consistencyToken.hasPrefix("ct1_"))

            // Written differently, the same person: the number is normalised before it is looked up.
            let checkReply = try await acme.check("0039 333-1234567", purpose: "shipping_update")
            #expect(checkReply.status == .ok)
            let check = try checkReply.decoded(CheckReply.self)
            #expect(check.allowed == true)
            #expect(check.reason == "consent_granted")
            #expect(check.consentId == consents[0].id)
            #expect(check.grantedAt != nil && check.grantedAt == consents[0].grantedAt)
            #expect(try check.billable == true, "a template outside the window is paid")
            #expect(try check.serviceWindow.open == false)

            let other = try await acme.check("+393331234567", purpose: "account_update").decoded(CheckReply.self)
            #expect(other.allowed == false && other.reason == "no_consent")
            #expect(other.consentId == nil)
            let session = try await acme.check("+393331234567", purpose: "shipping_update", messageType: "session")
                .decoded(CheckReply.self)
            #expect(session.allowed == false && session.reason == "service_window_closed")
            let stranger = try await acme.check("+393339999999", purpose: "shipping_update").decoded(CheckReply.self)
            #expect(stranger.allowed == false && stranger.reason == "no_consent")

            // What is stored: the collection with both clocks and the key, one evidence link per consent, and the
            // audit events without the number.
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_evidence") == 2)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM collections WHERE collected_at > now() - interval '10 minutes' AND received_at > collected_at AND method = 'checkbox' AND recorded_by = '\(acme.tenant.keys[.consentWrite]!.record.id)'"
                ) == 1)
            #expect(
                try await database.count(
                    "SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.granted' AND actor = '\(acme.tenant.keys[.consentWrite]!.record.id.lowercased)' AND subject_ref IS NOT NULL"
                ) == 2)
        }
    }

    @Test func recordingAGrantedPurposeAgainKeepsOneConsentAndAddsEvidence() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            let first = try await acme.optIn("+393331234567", purposes: ["shipping_update"], noticeId: notice)
            let second = try await acme.optIn(
                "+39 333 1234567", purposes: ["shipping_update", "marketing"], noticeId: notice)
            #expect(second.status == .created)
            let firstIds = try first.decoded(OptInReply.self).consents.map(\.id)
            let secondIds = try second.decoded(OptInReply.self).consents.map(\.id)
            #expect(firstIds.count == 1 && secondIds.count == 2)
            #expect(secondIds.first == firstIds.first, "the granted consent is kept, not duplicated")
            #expect(try await database.count("SELECT count(*)::int8 FROM consents") == 2)
            #expect(try await database.count("SELECT count(*)::int8 FROM subjects") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 2)
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_evidence") == 3)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action = 'consent.reconfirmed'")
                    == 1)
        }
    }

    @Test func doubleOptInStaysPendingUntilConfirmed() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["marketing"])
            var provenance = APIClient.provenance
            provenance["method"] = "double_opt_in"
            let pending = try await acme.optIn(
                "+393331234567", purposes: ["marketing"], noticeId: notice, provenance: provenance)
            let consent = try #require(try pending.decoded(OptInReply.self).consents.first)
            #expect(consent.status == "pending")
            #expect(consent.grantedAt == nil)
            let check = try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self)
            #expect(check.allowed == false && check.reason == "pending_confirmation")
            // A direct opt-in by the person confirms it.
            let direct = try await acme.optIn("+393331234567", purposes: ["marketing"], noticeId: notice)
            #expect(try direct.decoded(OptInReply.self).consents.first?.status == "granted")
            #expect(
                try await acme.check("+393331234567", purpose: "marketing").decoded(CheckReply.self).allowed == true)
        }
    }

    @Test func badOptInsAreRefusedAndChangeNothing() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let smsNotice = try await acme.notice("sms", purposes: ["shipping_update"])
            let foreignNotice = try await globex.notice(purposes: ["shipping_update"])
            let good: [String: Any] = [
                "subject": "+393331234567", "channel": "whatsapp", "purposes": ["shipping_update"], "noticeId": notice,
                "provenance": APIClient.provenance,
            ]
            func with(_ key: String, _ value: Any) -> [String: Any] { good.merging([key: value]) { $1 } }
            func provenance(_ key: String, _ value: Any) -> [String: Any] {
                with("provenance", APIClient.provenance.merging([key: value]) { $1 })
            }
            let cases: [([String: Any], String, String)] = [
                (with("subject", "333 123 4567"), "invalid_field", "subject"),
                (with("subject", "+39 333 abc"), "invalid_field", "subject"),
                (with("channel", "pigeon"), "invalid_field", "channel"),
                (with("purposes", ["no_such_purpose"]), "unknown_purpose", "purposes"),
                (with("purposes", ["marketing"]), "purpose_not_in_notice", "purposes"),
                (with("purposes", [String]()), "invalid_field", "purposes"),
                (with("noticeId", smsNotice), "notice_channel_mismatch", "channel"),
                (with("noticeId", foreignNotice), "unknown_notice", "noticeId"),
                (with("noticeId", UUID().uuidString), "unknown_notice", "noticeId"),
                (with("noticeId", "nope"), "invalid_field", "noticeId"),
                (provenance("method", "telepathy"), "invalid_field", "provenance.method"),
                (provenance("collectedAt", "2999-01-01T00:00:00Z"), "invalid_field", "provenance.collectedAt"),
                (provenance("collectedAt", "yesterday"), "invalid_field", "provenance.collectedAt"),
                (provenance("pageUrl", "javascript:alert(1)"), "invalid_field", "provenance.pageUrl"),
                (provenance("ipAddress", "300.1.2.3"), "invalid_field", "provenance.ipAddress"),
                (good.filter { $0.key != "provenance" }, "invalid_field", "provenance"),
            ]
            let before = try await database.footprint()
            for (body, code, field) in cases {
                let reply = try await acme.post("/v1/consents", as: .consentWrite, body)
                #expect(reply.status == .unprocessableContent, "\(field): \(reply.text)")
                #expect(try reply.error.code == code && reply.error.field == field, "\(reply.text)")
                #expect(!reply.text.contains("3331234567"), "errors never repeat the identifier")
            }
            let noScope = try await acme.post("/v1/consents", as: .consentCheck, good)
            #expect(noScope.status == .forbidden)
            #expect(try await database.footprint() == before)
        }
    }
}

@Suite struct IdempotencyTests {
    @Test func aRetryReplaysTheFirstResponseAndCreatesNothing() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let first = try await acme.optIn(
                "+393331234567", purposes: ["shipping_update"], noticeId: notice, idempotencyKey: "order-1")
            let retry = try await acme.optIn(
                "+393331234567", purposes: ["shipping_update"], noticeId: notice, idempotencyKey: "order-1")
            #expect(first.status == .created && retry.status == .created)
            #expect(retry.body == first.body)
            #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(first.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 1)

            let before = try await database.footprint()
            let other = try await acme.optIn(
                "+393339999999", purposes: ["shipping_update"], noticeId: notice, idempotencyKey: "order-1")
            #expect(try other.status == .unprocessableContent && other.error.code == "idempotency_key_reused")
            let elsewhere = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393331234567", "channel": "whatsapp"],
                idempotencyKey: "order-1")
            #expect(try elsewhere.error.code == "idempotency_key_reused", "a key belongs to one operation")
            let badKey = try await acme.optIn(
                "+393331234567", purposes: ["shipping_update"], noticeId: notice,
                idempotencyKey: String(repeating: "k", count: 256))
            #expect(try badKey.error.field == "Idempotency-Key")
            #expect(try await database.footprint() == before)

            // Keys are scoped to the tenant: another tenant's same key is its own.
            let theirNotice = try await globex.notice(purposes: ["shipping_update"])
            let theirs = try await globex.optIn(
                "+393331234567", purposes: ["shipping_update"], noticeId: theirNotice, idempotencyKey: "order-1")
            #expect(theirs.status == .created && theirs.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
        }
    }

    /// Opt-ins without a key for someone new, all at once: each statement that finds the person made by another
    /// meanwhile writes nothing and is tried again (app_record_opt_in returns no row), so one person is one subject
    /// with one active consent, and every collection is kept as evidence.
    @Test func concurrentFirstOptInsForOneNewPersonMakeOneSubject() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await acme.optIn("+393337654321", purposes: ["shipping_update"], noticeId: notice).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .created }, "\(statuses)")
            #expect(try await database.count("SELECT count(*)::int8 FROM subjects") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM subject_keys") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM consents") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 8)
            #expect(try await database.count("SELECT count(*)::int8 FROM consent_evidence") == 8)
        }
    }

    @Test func concurrentRetriesCreateOneRecord() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            let notice = try await acme.notice(purposes: ["shipping_update"])
            let bodies = try await withThrowingTaskGroup(of: Data.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        // The retries wait for the first request's transaction; on a machine loaded enough for that
                        // to outlast the lock timeout they are 503 `database_busy`, and a client retries them, as
                        // the answer says, with the same key.
                        for _ in 0..<10 {
                            let reply = try await acme.optIn(
                                "+393331234567", purposes: ["shipping_update"], noticeId: notice,
                                idempotencyKey: "same")
                            if reply.status == .serviceUnavailable, try reply.error.code == "database_busy" { continue }
                            #expect(reply.status == .created, "\(reply.text)")
                            return reply.body
                        }
                        Issue.record("still busy after ten tries")
                        return Data()
                    }
                }
                return try await group.reduce(into: [Data]()) { $0.append($1) }
            }
            #expect(Set(bodies).count == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM collections") == 1)
            #expect(
                try await database.count("SELECT count(*)::int8 FROM audit_events WHERE action LIKE 'consent.%'") == 1)
        }
    }
}
