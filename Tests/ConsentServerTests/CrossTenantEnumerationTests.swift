import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

/// Everything tenant A makes, asked for through the real HTTP API with each of tenant B's keys: B finds nothing,
/// changes nothing, and cannot tell A's people from strangers.
@Suite struct CrossTenantEnumerationTests {
    @Test func tenantBFindsNothingOfTenantA() async throws {
        try await withTenants(["acme", "globex"]) { tenants, _ in
            let (a, b) = (tenants[0], tenants[1])
            let notice = try await a.notice(purposes: ["marketing", "shipping_update"])
            let subjects = ["+393330100001", "+393330100002", "+393330100003"]
            var consentIds: [String] = []
            for subject in subjects {
                let reply = try await a.optIn(subject, purposes: ["marketing", "shipping_update"], noticeId: notice)
                consentIds += try reply.decoded(OptInReply.self).consents.compactMap(\.id)
            }
            var pending = APIClient.provenance
            pending["method"] = "double_opt_in"
            let pendingReply = try await a.optIn(
                "+393330100004", purposes: ["marketing"], noticeId: notice, provenance: pending)
            let pendingId = try #require(try pendingReply.decoded(OptInReply.self).consents.first?.id)
            let request = try await a.post(
                "/v1/requests", as: .dpo, ["type": "access", "subject": subjects[0], "channel": "whatsapp"])
            let requestId = try request.decoded(SubjectRequestReply.self).id
            let session = try await a.post(
                "/v1/consent-sessions", as: .consentWrite,
                [
                    "subject": subjects[1], "channel": "whatsapp", "noticeId": notice,
                    "pageUrl": "https://acme.example/checkout",
                ])
            let sessionToken = try session.decoded(ConsentSessionOpenedReply.self).token
            #expect(consentIds.count == 6)

            // Reads by id.
            #expect(try await b.call(.get, "/v1/notices/\(notice)", as: .admin).status == .notFound)
            #expect(try await b.call(.get, "/v1/requests/\(requestId)", as: .dpo).status == .notFound)
            for path in [
                "/v1/requests/\(requestId)/complete", "/v1/requests/\(requestId)/cancel",
                "/v1/consents/\(pendingId)/confirm",
            ] {
                let scope: Scope = path.hasPrefix("/v1/requests") ? .dpo : .consentWrite
                #expect(try await b.call(.post, path, as: scope).status == .notFound, "\(path)")
            }
            // Lists.
            let notices = try await b.call(.get, "/v1/notices", as: .admin).decoded(NoticeListReply.self).notices
            #expect(notices.isEmpty)
            #expect(
                try await b.call(.get, "/v1/requests", as: .dpo).decoded(SubjectRequestListReply.self).requests.isEmpty)
            #expect(
                try await b.call(.get, "/v1/reports/consents", as: .dpo).decoded(ConsentReportReply.self).rows.isEmpty)
            let page = try await b.call(.get, "/v1/audit/events?limit=1000", as: .dpo).decoded(AuditEventPageReply.self)
            #expect(page.next == nil, "B's whole log is on one page")
            let events = page.events
            #expect(!events.isEmpty, "B's log has at least its own creation")
            #expect(
                !events.contains { event in
                    guard case .object(let data)? = event.members["data"], case .string(let id)? = data["consentId"]
                    else { return false }
                    return consentIds.contains(id)
                })
            #expect(!events.contains { $0.members["subjectRef"] != nil }, "B's log holds no subject at all")

            // People, by identifier.
            for subject in subjects {
                let check = try await b.check(subject, purpose: "marketing").decoded(CheckReply.self)
                #expect(check.allowed == false && check.reason == "no_consent")
                #expect(check.consentId == nil)
                #expect(
                    try await b.post("/v1/subjects/export", as: .dpo, ["subject": subject, "channel": "whatsapp"])
                        .status == .notFound)
                #expect(
                    try await b.post("/v1/subjects/links", as: .dpo, ["subject": subject, "channel": "whatsapp"]).status
                        == .notFound)
                let revoked = try await b.post(
                    "/v1/revocations", as: .consentWrite, ["subject": subject, "channel": "whatsapp"])
                #expect(try revoked.decoded(RevocationReply.self).revoked.isEmpty)
            }
            let batch = try await b.post(
                "/v1/checks/batch", as: .consentCheck,
                ["channel": "whatsapp", "purpose": "marketing", "subjects": subjects])
            let results = try batch.decoded(BatchCheckReply.self).results
            #expect(results.map(\.subject) == subjects && results.allSatisfy { $0.reason == "no_consent" })

            // A's session token does not open under B's tenant (the token names A), and B's erasure of A's person
            // finds no one.
            var bytes = try #require(Base64URL.decode(sessionToken))
            bytes.replaceSubrange(0..<16, with: b.tenant.tenant.id.bytes)
            #expect(try await b.raw(.get, "/v1/consent-sessions/\(Base64URL.encode(bytes))").status == .notFound)
            let erase = try await b.post(
                "/v1/subjects/erase", as: .dpo, ["subject": subjects[2], "channel": "whatsapp"])
            #expect(try erase.decoded(ErasureReply.self).subjectFound == false)

            // And A still has all of it.
            for subject in subjects {
                #expect(
                    try await a.check(subject, purpose: "marketing").decoded(CheckReply.self).reason
                        == "consent_granted")
            }
            #expect(try await a.call(.get, "/v1/requests/\(requestId)", as: .dpo).status == .ok)
        }
    }
}
