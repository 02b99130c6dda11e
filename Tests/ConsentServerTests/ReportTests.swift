import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Testing

@Suite struct ConsentReportTests {
    @Test func countsGrantsWithdrawalsAndActiveConsentsPerPurposeAndChannel() async throws {
        try await withTenants(["acme", "globex"]) { tenants, _ in
            let acme = tenants[0]
            let start = Date().addingTimeInterval(-1)
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            let sms = try await acme.notice("sms", purposes: ["marketing"])
            _ = try await acme.optIn("+393337000001", purposes: ["shipping_update", "marketing"], noticeId: notice)
            _ = try await acme.optIn("+393337000002", purposes: ["marketing"], noticeId: notice)
            _ = try await acme.optIn("+393337000003", channel: "sms", purposes: ["marketing"], noticeId: sms)
            var pending = APIClient.provenance
            pending["method"] = "double_opt_in"
            _ = try await acme.optIn("+393337000004", purposes: ["marketing"], noticeId: notice, provenance: pending)
            _ = try await acme.post(
                "/v1/revocations", as: .consentWrite, ["subject": "+393337000002", "channel": "whatsapp"])
            _ = try await tenants[1].optIn(
                "+393337000005", purposes: ["marketing"], noticeId: try await tenants[1].notice(purposes: ["marketing"])
            )
            let end = Date().addingTimeInterval(1)

            let reply = try await acme.call(
                .get, "/v1/reports/consents?from=\(RFC3339.format(start))&to=\(RFC3339.format(end))", as: .dpo)
            #expect(reply.status == .ok, "\(reply.text)")
            let rows = try reply.decoded(ConsentReportReply.self).rows
            let table = rows.map { "\($0.purpose)/\($0.channel) \($0.granted) \($0.withdrawn) \($0.active)" }
            #expect(
                table == ["marketing/sms 1 0 1", "marketing/whatsapp 2 1 1", "shipping_update/whatsapp 1 0 1"],
                "\(table)")

            // A period that ends before everything: nothing granted in it and nothing active at its end.
            let before = try await acme.call(
                .get,
                "/v1/reports/consents?from=\(RFC3339.format(start.addingTimeInterval(-86_400)))&to=\(RFC3339.format(start))",
                as: .dpo)
            #expect(try before.decoded(ConsentReportReply.self).rows.isEmpty)
            #expect(
                try await acme.call(
                    .get, "/v1/reports/consents?from=\(RFC3339.format(end))&to=\(RFC3339.format(start))", as: .dpo
                ).error.field == "from")
            #expect(
                try await acme.call(.get, "/v1/reports/consents?from=yesterday", as: .dpo).status
                    == .unprocessableContent)
            #expect(try await acme.call(.get, "/v1/reports/consents", as: .admin).status == .forbidden)
        }
    }
}
