import ConsentCore
import Crypto
import Foundation
import Testing

@Suite struct WebhookSignatureTests {
    let secret = Array("app-secret-for-tests".utf8)
    let body = Array(#"{"object":"whatsapp_business_account","entry":[]}"#.utf8)

    @Test func acceptsOnlyTheHMACOfTheExactBody() {
        let header = WebhookSignature.header(body: body, appSecret: secret)
        #expect(header.hasPrefix("sha256=") && header.count == 7 + 64)
        #expect(WebhookSignature.isValid(header: header, body: body, appSecret: secret))
        #expect(
            WebhookSignature.isValid(
                header: "sha256=" + header.dropFirst(7).uppercased(), body: body, appSecret: secret))
        #expect(!WebhookSignature.isValid(header: header, body: body + [0x20], appSecret: secret))
        #expect(!WebhookSignature.isValid(header: header, body: body, appSecret: secret + [0x21]))
        // Every single-bit change of the MAC is refused.
        let mac = [UInt8](hex: String(header.dropFirst(7)))!
        for index in mac.indices {
            var forged = mac
            forged[index] ^= 0x01
            #expect(!WebhookSignature.isValid(header: "sha256=" + forged.hexString, body: body, appSecret: secret))
        }
    }

    @Test func refusesMalformedHeaders() {
        let mac = String(WebhookSignature.header(body: body, appSecret: secret).dropFirst(7))
        for header in [
            nil, "", "sha256=", "sha1=" + mac, mac, "sha256=" + mac.dropLast(2), "sha256=" + mac + "00",
            "sha256= " + mac, "SHA256=" + mac,
        ] {
            #expect(
                !WebhookSignature.isValid(header: header, body: body, appSecret: secret),
                "\(String(describing: header))")
        }
    }

    @Test func constantTimeEqualityIsEquality() {
        #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equal([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equal([], []))
    }
}

@Suite struct WhatsAppEventTests {
    func decode(_ json: String) throws -> [WhatsAppEvent] {
        try WhatsAppEvent.events(in: JSONDecoder().decode(WhatsAppNotification.self, from: Data(json.utf8)))
    }

    func envelope(_ value: String, field: String = "messages") -> String {
        #"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"\#(field)","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"2"},\#(value)}}]}]}"#
    }

    @Test func messagesOfEveryKindBecomeInboundEventsWithTheirText() throws {
        let events = try decode(
            envelope(
                #"""
                "contacts":[{"profile":{"name":"A"},"wa_id":"393331"}],
                "messages":[
                  {"from":"393331","id":"m1","timestamp":"1764000000","type":"text","text":{"body":"STOP"}},
                  {"from":"393331","id":"m2","timestamp":"1764000001","type":"button","button":{"payload":"p","text":"Stop promotions"}},
                  {"from":"393331","id":"m3","timestamp":"1764000002","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b","title":"Sì"}}},
                  {"from":"393331","id":"m4","timestamp":"1764000003","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"l","title":"Oui"}}},
                  {"from":"393331","id":"m5","timestamp":"1764000004","type":"image","image":{"id":"i","mime_type":"image/jpeg"}}
                ]
                """#))
        let at = { Date(timeIntervalSince1970: $0) }
        #expect(
            events == [
                .inbound(messageId: "m1", from: "393331", at: at(1_764_000_000), text: "STOP", businessNumberId: "2"),
                .inbound(
                    messageId: "m2", from: "393331", at: at(1_764_000_001), text: "Stop promotions",
                    button: TappedButton(title: "Stop promotions", payload: "p"), businessNumberId: "2"),
                .inbound(
                    messageId: "m3", from: "393331", at: at(1_764_000_002), text: "Sì",
                    button: TappedButton(title: "Sì", payload: "b"), businessNumberId: "2"),
                .inbound(messageId: "m4", from: "393331", at: at(1_764_000_003), text: "Oui", businessNumberId: "2"),
                .inbound(messageId: "m5", from: "393331", at: at(1_764_000_004), text: nil, businessNumberId: "2"),
            ])
    }

    @Test func preferencesAndStatuses() throws {
        let preferences = try decode(
            envelope(
                #"""
                "user_preferences":[
                  {"wa_id":"393332","detail":"User requested to stop marketing messages","category":"marketing_messages","value":"stop","timestamp":1764000100},
                  {"wa_id":"393333","detail":"User requested to resume marketing messages","category":"marketing_messages","value":"resume","timestamp":1764000101},
                  {"wa_id":"393334","detail":"?","category":"something_new","value":"stop","timestamp":1764000102}
                ]
                """#, field: "user_preferences"))
        #expect(
            preferences == [
                .marketingStopped(waId: "393332", at: Date(timeIntervalSince1970: 1_764_000_100)),
                .marketingResumed(waId: "393333", at: Date(timeIntervalSince1970: 1_764_000_101)),
            ])
        let statuses = try decode(
            envelope(#""statuses":[{"id":"wamid.x","status":"read","timestamp":"1764000200","recipient_id":"393335"}]"#)
        )
        #expect(statuses.isEmpty)
    }

    @Test func refusesWhatIsNotAWhatsAppNotification() throws {
        #expect(throws: WhatsAppEvent.Invalid.notWhatsApp("page")) {
            try WhatsAppEvent.events(
                in: JSONDecoder().decode(WhatsAppNotification.self, from: Data(#"{"object":"page","entry":[]}"#.utf8)))
        }
        #expect(throws: WhatsAppEvent.Invalid.timestamp(messageId: "m1")) {
            try decode(
                envelope(#""messages":[{"from":"1","id":"m1","timestamp":"-5","type":"text","text":{"body":"x"}}]"#))
        }
        #expect(throws: DecodingError.self) { try decode(#"{"object":"whatsapp_business_account"}"#) }
    }

    @Test func aWhatsAppIdIsANumberWithoutItsPlus() throws {
        #expect(WhatsAppEvent.phoneNumber(waId: "393331234567") == "+393331234567")
        #expect(WhatsAppEvent.phoneNumber(waId: "+393331234567") == "+393331234567")
        #expect(
            try SubjectIdentifier(WhatsAppEvent.phoneNumber(waId: "16315551181"), channel: .whatsapp).value
                == "+16315551181")
    }
}

@Suite struct SelfServiceLinkTests {
    let key = SymmetricKey(size: .bits256)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func link(expiresIn seconds: TimeInterval = 3600, issuedBy: UUID? = UUID()) -> SelfServiceLink {
        SelfServiceLink(
            tenantId: UUID(), subjectId: UUID(), issuedBy: issuedBy, expiresAt: now.addingTimeInterval(seconds))
    }

    @Test func roundTripsAndNamesItsTenant() throws {
        for issuer in [UUID(), nil] {
            let original = link(issuedBy: issuer)
            let token = original.token(key: key)
            #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
            #expect(SelfServiceLink.claimedTenant(token) == original.tenantId)
            #expect(try SelfServiceLink.verify(token, key: key, now: now) == original)
        }
    }

    @Test func everyAlteredByteIsRefused() throws {
        let token = link().token(key: key)
        let bytes = try #require(Base64URL.decode(token))
        for index in bytes.indices {
            var altered = bytes
            altered[index] ^= 0x80
            #expect(throws: (any Error).self) {
                try SelfServiceLink.verify(Base64URL.encode(altered), key: key, now: now)
            }
        }
        #expect(throws: SelfServiceLink.Rejection.badSignature) {
            try SelfServiceLink.verify(token, key: SymmetricKey(size: .bits256), now: now)
        }
    }

    @Test func expiresAtItsTime() {
        let token = link(expiresIn: 10).token(key: key)
        #expect((try? SelfServiceLink.verify(token, key: key, now: now.addingTimeInterval(9))) != nil)
        #expect(throws: SelfServiceLink.Rejection.expired) {
            try SelfServiceLink.verify(token, key: key, now: now.addingTimeInterval(10))
        }
    }

    @Test func malformedTokens() {
        for token in [
            "", "a", "%%%", String(repeating: "A", count: 2000), Base64URL.encode([2] + Array(repeating: 0, count: 88)),
        ] {
            #expect(throws: SelfServiceLink.Rejection.malformed) {
                try SelfServiceLink.verify(token, key: key, now: now)
            }
            #expect(SelfServiceLink.claimedTenant(token) == nil)
        }
    }

    @Test func sessionTokensCarryTheirTenantAndNothingElseReadable() throws {
        let tenant = UUID()
        let token = TenantToken.generate(tenantId: tenant)
        #expect(TenantToken(token.text) == token && token.tenantId == tenant)
        #expect(token.sha256.count == 32 && token.sha256 != TenantToken.generate(tenantId: tenant).sha256)
        #expect(TenantToken("short") == nil && TenantToken(token.text + "A") == nil)
    }
}

@Suite struct AllowedOriginTests {
    @Test func normalisesOrigins() {
        let cases: [(String, String?)] = [
            ("https://shop.example", "https://shop.example"),
            ("HTTPS://Shop.Example", "https://shop.example"),
            ("https://shop.example:443", "https://shop.example"),
            ("http://shop.example:80", "http://shop.example"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://shop.example/", nil), ("https://shop.example/checkout", nil), ("https://shop.example?x=1", nil),
            ("ftp://shop.example", nil), ("shop.example", nil), ("*", nil), ("null", nil), ("", nil),
            ("https://user@shop.example", nil), ("https://shop.example:0", nil), ("https://sh op.example", nil),
            ("https://shop.example#f", nil),
        ]
        for (input, expected) in cases {
            #expect(AllowedOrigin(input)?.text == expected, "\(input)")
        }
    }
}

@Suite struct CollectionPolicyTests {
    @Test func readsItsVariables() throws {
        let defaults = try EnvironmentReader.collection([:])
        #expect(
            defaults == .default && defaults.pendingConsentLifetime == 7 * 86_400
                && defaults.consentSessionLifetime == 900)
        let set = try EnvironmentReader.collection([
            "CONSENTD_PENDING_CONSENT_HOURS": "48", "CONSENTD_CONSENT_SESSION_MINUTES": "5",
            "CONSENTD_SELF_SERVICE_LINK_DAYS": "14", "CONSENTD_PUBLIC_URL": "https://Consent.Example.com/",
            "CONSENTD_TRUST_FORWARDED_FOR": "true",
        ])
        #expect(set.pendingConsentLifetime == 48 * 3600 && set.consentSessionLifetime == 300)
        #expect(set.selfServiceLinkLifetime == 14 * 86_400 && set.publicBaseURL == "https://consent.example.com")
        #expect(set.trustForwardedFor)
        for (name, value) in [
            ("CONSENTD_PENDING_CONSENT_HOURS", "0"), ("CONSENTD_CONSENT_SESSION_MINUTES", "lots"),
            ("CONSENTD_SELF_SERVICE_LINK_DAYS", "366"), ("CONSENTD_PUBLIC_URL", "consent.example.com"),
            ("CONSENTD_PUBLIC_URL", "https://consent.example.com/path"),
        ] {
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") {
                try EnvironmentReader.collection([name: value])
            }
        }
    }

    @Test func confirmationKeywordsAreWholeMessages() {
        for yes in ["YES", "yes", "Yes!", " sì ", "SI", "Sí", "ja", "JA.", "oui", "Oui !", "SIM", "sim"] {
            #expect(ReplyKeywords.isConfirmation(yes), "\(yes)")
        }
        for other in ["yes please", "si, ma dopo", "jaja", "ouii", "no", "STOP", ""] {
            #expect(!ReplyKeywords.isConfirmation(other), "\(other)")
        }
    }
}

@Suite struct TokenBucketTests {
    @Test func aBurstThenTheRefillRate() {
        var bucket = TokenBucket(capacity: 3, ratePerSecond: 2, now: 100)
        #expect((0..<3).map { _ in bucket.take(now: 100) } == [.allowed, .allowed, .allowed])
        #expect(bucket.take(now: 100) == .limited(retryAfter: 0.5))
        #expect(bucket.take(now: 100.25) == .limited(retryAfter: 0.25))
        #expect(bucket.take(now: 100.5) == .allowed)
        #expect(bucket.take(now: 100.5) == .limited(retryAfter: 0.5))
    }

    @Test func neverHoldsMoreThanItsCapacityAndIgnoresAClockGoingBack() {
        var bucket = TokenBucket(capacity: 2, ratePerSecond: 1, now: 0)
        #expect(bucket.available(at: 1_000_000) == 2)
        _ = bucket.take(now: 10)
        _ = bucket.take(now: 10)
        #expect(bucket.take(now: 5) == .limited(retryAfter: 1), "an earlier time adds nothing")
        #expect(bucket.tokens == 0 && bucket.updatedAt == 10)
        #expect(bucket.take(now: 11) == .allowed)
    }

    @Test func limitsPerScopeFromTheEnvironment() throws {
        let limits = try EnvironmentReader.rateLimits([
            "CONSENTD_RATE_LIMIT_CONSENT_CHECK": "10/20", "CONSENTD_RATE_LIMIT_DPO": "1.5/3",
        ])
        #expect(limits.byScope[.consentCheck] == .init(perSecond: 10, burst: 20))
        #expect(limits.byScope[.dpo] == .init(perSecond: 1.5, burst: 3))
        #expect(limits.byScope[.admin] == RateLimits.default.byScope[.admin])
        #expect(limits.limit(for: [.dpo, .consentCheck]) == .init(perSecond: 10, burst: 20), "the most generous scope")
        #expect(limits.limit(for: []) == nil)
        for bad in ["10", "0/5", "5/0", "x/y", "10/20/30", "-1/5"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try EnvironmentReader.rateLimits(["CONSENTD_RATE_LIMIT_ADMIN": bad])
            }
        }
    }
}
