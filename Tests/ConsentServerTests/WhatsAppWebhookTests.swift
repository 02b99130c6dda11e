import ConsentCore
import ConsentTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Meta's documented payloads (Fixtures/whatsapp), signed as Meta signs them, through the real router and database.
@Suite struct WhatsAppWebhookTests {
    static let appSecret = "3f1c0c2b6a9d4e58b7a1c0ffee123456"
    static let verifyToken = "consentledger-verify-7e2b"

    /// A fixture with its timestamps moved to `now`: the window is measured from the message's own time.
    static func fixture(_ name: String, now: Date = Date()) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/whatsapp/\(name).json")
        let text = try String(contentsOf: url, encoding: .utf8)
        let seconds = String(Int(now.timeIntervalSince1970))
        return text.replacingOccurrences(
            of: #"("timestamp": "?)\d+"#, with: "$1\(seconds)", options: .regularExpression)
    }

    static func configure(_ tenant: APIClient) async throws {
        let reply = try await tenant.post(
            "/v1/settings/whatsapp", as: .admin, ["appSecret": appSecret, "verifyToken": verifyToken], method: .put)
        #expect(reply.status == .ok, "\(reply.text)")
    }

    static func deliver(_ body: String, to tenant: APIClient, signature: String?? = .none) async throws
        -> APIClient.Reply
    {
        var headers: HTTPFields = [.contentType: "application/json"]
        switch signature {
        case .none:
            headers[HTTPField.Name("X-Hub-Signature-256")!] = WebhookSignature.header(
                body: Array(body.utf8), appSecret: Array(appSecret.utf8))
        case .some(.some(let value)): headers[HTTPField.Name("X-Hub-Signature-256")!] = value
        case .some(.none): break
        }
        return try await tenant.raw(
            .post, "/v1/webhooks/whatsapp/\(tenant.tenant.tenant.id.lowercased)", headers: headers, body: body)
    }

    @Test func anInboundMessageIsRecordedOnceAndOpensTheWindow() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await Self.configure(acme)
            let body = try Self.fixture("text-message")
            let first = try await Self.deliver(body, to: acme)
            #expect(first.status == .ok, "\(first.text)")
            let delivered = try first.decoded(WebhookDeliveryReply.self)
            #expect(delivered.received == 1 && delivered.duplicates == 0)
            let session = try await acme.check("+393331005001", purpose: "shipping_update", messageType: "session")
                .decoded(CheckReply.self)
            #expect(session.allowed == true && session.reason == "service_window_open")

            // Meta retries: the same message id is recorded once, however often it comes.
            let again = try await Self.deliver(body, to: acme)
            #expect(
                try again.status == .ok && again.decoded(WebhookDeliveryReply.self).received == 0
                    && again.decoded(WebhookDeliveryReply.self).duplicates == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM interactions") == 1)
            #expect(try await database.count("SELECT count(*)::int8 FROM whatsapp_messages_seen") == 1)
            let actors = try await database.count(
                "SELECT count(*)::int8 FROM audit_events WHERE action = 'interaction.received' AND actor = 'whatsapp_webhook'"
            )
            #expect(actors == 1)
        }
    }

    @Test func concurrentRetriesOfOneMessageRecordItOnce() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await Self.configure(acme)
            let body = try Self.fixture("text-message")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let reply = try await Self.deliver(body, to: acme)
                        #expect(reply.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await database.count("SELECT count(*)::int8 FROM interactions") == 1)
        }
    }

    @Test func stopWithdrawsEveryPurposeOnWhatsApp() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await Self.configure(acme)
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            _ = try await acme.optIn("+393331005002", purposes: ["shipping_update", "marketing"], noticeId: notice)
            let reply = try await Self.deliver(try Self.fixture("stop-message"), to: acme)
            #expect(
                try reply.status == .ok && reply.decoded(WebhookDeliveryReply.self).withdrawals == 2, "\(reply.text)")
            for purpose in ["shipping_update", "marketing"] {
                let check = try await acme.check("+393331005002", purpose: purpose).decoded(CheckReply.self)
                #expect(check.allowed == false && check.reason == "consent_withdrawn")
            }
        }
    }

    @Test func aMarketingStopPreferenceWithdrawsMarketingOnly() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await Self.configure(acme)
            let notice = try await acme.notice(purposes: ["shipping_update", "marketing"])
            _ = try await acme.optIn("+393331005004", purposes: ["shipping_update", "marketing"], noticeId: notice)
            let reply = try await Self.deliver(try Self.fixture("user-preferences-stop"), to: acme)
            #expect(
                try reply.status == .ok && reply.decoded(WebhookDeliveryReply.self).withdrawals == 1, "\(reply.text)")
            let marketing = try await acme.check("+393331005004", purpose: "marketing")
            #expect(try marketing.decoded(CheckReply.self).reason == "consent_withdrawn")
            #expect(
                try await acme.check("+393331005004", purpose: "shipping_update").decoded(CheckReply.self).allowed
                    == true)
            let source = try await database.count(
                "SELECT count(*)::int8 FROM consents WHERE purpose = 'marketing' AND revoke_source = 'channel_preference'"
            )
            #expect(source == 1)
        }
    }

    @Test func aConfirmationButtonConfirmsADoubleOptIn() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            try await Self.configure(acme)
            let notice = try await acme.notice(purposes: ["shipping_update"])
            var provenance = APIClient.provenance
            provenance["method"] = "double_opt_in"
            _ = try await acme.optIn(
                "+393331005003", purposes: ["shipping_update"], noticeId: notice, provenance: provenance)
            #expect(
                try await acme.check("+393331005003", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "pending_confirmation")
            let reply = try await Self.deliver(try Self.fixture("button-reply-yes"), to: acme)
            #expect(
                try reply.status == .ok && reply.decoded(WebhookDeliveryReply.self).confirmations == 1, "\(reply.text)")
            #expect(
                try await acme.check("+393331005003", purpose: "shipping_update").decoded(CheckReply.self).reason
                    == "consent_granted")
        }
    }

    @Test func deliveryReceiptsChangeNothing() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await Self.configure(acme)
            let before = try await database.footprint()
            let reply = try await Self.deliver(try Self.fixture("statuses"), to: acme)
            #expect(try reply.status == .ok && reply.decoded(WebhookDeliveryReply.self).received == 0)
            #expect(try await database.footprint() == before)
        }
    }

    @Test func aBadOrMissingSignatureIs401AndStoresNothing() async throws {
        try await withTenants(["acme", "globex"]) { tenants, database in
            let (acme, globex) = (tenants[0], tenants[1])
            try await Self.configure(acme)
            let body = try Self.fixture("stop-message")
            let before = try await database.footprint()
            let forged = WebhookSignature.header(
                body: Array(body.utf8), appSecret: Array("another-app-secret-0000".utf8))
            let tampered = WebhookSignature.header(
                body: Array((body + " ").utf8), appSecret: Array(Self.appSecret.utf8))
            for signature: String? in [nil, forged, tampered, "sha256=", "sha1=abcdef", "sha256=zz"] {
                let reply = try await Self.deliver(body, to: acme, signature: .some(signature))
                #expect(reply.status == .unauthorized, "\(String(describing: signature)): \(reply.text)")
                #expect(try reply.error.code == "invalid_signature")
            }
            // A tenant with no app secret configured accepts nothing, even a body signed with someone else's secret.
            #expect(try await Self.deliver(body, to: globex).status == .unauthorized)
            #expect(try await database.footprint() == before)
        }
    }

    @Test func aSignedBodyThatIsNotANotificationIs400() async throws {
        try await withTenants(["acme"]) { tenants, database in
            let acme = tenants[0]
            try await Self.configure(acme)
            let before = try await database.footprint()
            for body in [
                #"{"object":"page","entry":[]}"#, "not json",
                #"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"393331005001","id":"x","timestamp":"soon","type":"text"}]}}]}]}"#,
            ] {
                let reply = try await Self.deliver(body, to: acme)
                #expect(try reply.status == .badRequest && reply.error.code == "invalid_payload", "\(reply.text)")
            }
            #expect(try await database.footprint() == before)
        }
    }

    @Test func theVerificationHandshakeEchoesTheChallengeOnlyForTheRightToken() async throws {
        try await withTenants(["acme"]) { tenants, _ in
            let acme = tenants[0]
            let path = "/v1/webhooks/whatsapp/\(acme.tenant.tenant.id.lowercased)"
            let query = "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="
            #expect(
                try await acme.raw(.get, path + query + Self.verifyToken).status == .forbidden, "not configured yet")
            try await Self.configure(acme)
            let good = try await acme.raw(.get, path + query + Self.verifyToken)
            #expect(good.status == .ok && good.text == "1158201444")
            #expect(try await acme.raw(.get, path + query + "wrong").status == .forbidden)
            #expect(
                try await acme.raw(
                    .get, path + "?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=\(Self.verifyToken)"
                ).status == .forbidden)
        }
    }
}
