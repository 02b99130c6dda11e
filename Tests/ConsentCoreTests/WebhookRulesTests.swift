import ConsentCore
import Foundation
import Testing

/// The pure decisions behind change webhooks: the signature, where a URL may lead, and when to try again.
@Suite struct WebhookRulesTests {
    // MARK: Signature

    /// Computed with Python's hmac, hashlib and base64 (no code shared with the service):
    /// base64(hmac.new(bytes(range(32)), b"<id>.<ts>." + body, sha256).digest()).
    @Test func theSignatureMatchesAnIndependentComputation() throws {
        let secret = try #require(WebhookSecret(encoded: "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
        #expect(secret.key == Array(0..<32))
        let body = Array(
            #"{"type":"consent.withdrawn","timestamp":"2026-12-02T10:00:00.000Z","data":{"purpose":"marketing"}}"#.utf8)
        let id = "0b7c2a4e-6f1d-4c39-9d7e-2a1f5b8c9e01"
        let signature = StandardWebhookSignature.sign(id: id, timestamp: 1_796_205_600, body: body, secret: secret)
        #expect(signature == "v1,rlZuFEHTgWwZfS5qxvGq8AGMeSb/+PhLSaUXgxqDuag=")
        #expect(
            StandardWebhookSignature.verify(
                header: signature, id: id, timestamp: 1_796_205_600, body: body, secret: secret))
        // Any change to the id, the time or the body fails it.
        #expect(
            !StandardWebhookSignature.verify(
                header: signature, id: id + "x", timestamp: 1_796_205_600, body: body, secret: secret))
        #expect(
            !StandardWebhookSignature.verify(
                header: signature, id: id, timestamp: 1_796_205_601, body: body, secret: secret))
        #expect(
            !StandardWebhookSignature.verify(
                header: signature, id: id, timestamp: 1_796_205_600, body: body + [32], secret: secret))
        #expect(
            !StandardWebhookSignature.verify(
                header: signature, id: id, timestamp: 1_796_205_600, body: body, secret: .generate()))
    }

    @Test func duringARotationBothSecretsSignAndEitherVerifies() {
        let (new, old) = (WebhookSecret.generate(), WebhookSecret.generate())
        let body = Array("{}".utf8)
        let header = StandardWebhookSignature.header(id: "e", timestamp: 1, body: body, secrets: [new, old])
        #expect(
            header.split(separator: " ").count == 2 && header.split(separator: " ").allSatisfy { $0.hasPrefix("v1,") })
        #expect(StandardWebhookSignature.verify(header: header, id: "e", timestamp: 1, body: body, secret: new))
        #expect(StandardWebhookSignature.verify(header: header, id: "e", timestamp: 1, body: body, secret: old))
        #expect(
            !StandardWebhookSignature.verify(header: header, id: "e", timestamp: 1, body: body, secret: .generate()))
        #expect(
            !StandardWebhookSignature.verify(header: "v2,abc v1,!!", id: "e", timestamp: 1, body: body, secret: new))
    }

    @Test func secretsAreWhsecAndEnoughBytes() {
        let secret = WebhookSecret.generate()
        #expect(secret.key.count == 32 && secret.encoded.hasPrefix("whsec_"))
        #expect(WebhookSecret(encoded: secret.encoded) == secret)
        #expect(WebhookSecret(encoded: String(secret.encoded.dropFirst(6))) == nil)
        #expect(WebhookSecret(encoded: "whsec_" + Data(repeating: 1, count: 8).base64EncodedString()) == nil)
        #expect(WebhookSecret(encoded: "whsec_not base64") == nil)
    }

    // MARK: Addresses

    @Test(arguments: [
        ("8.8.8.8", IPAddress.Reach.global), ("198.51.100.7", .global), ("127.0.0.1", .loopback),
        ("127.255.255.254", .loopback), ("10.0.0.1", .privateNetwork), ("172.16.0.1", .privateNetwork),
        ("172.31.255.255", .privateNetwork), ("172.32.0.1", .global), ("192.168.1.1", .privateNetwork),
        ("169.254.169.254", .linkLocal), ("100.64.0.1", .sharedAddressSpace), ("100.128.0.1", .global),
        ("0.0.0.0", .unspecified), ("224.0.0.1", .multicast), ("255.255.255.255", .reserved),
        ("192.0.0.8", .reserved), ("198.18.0.1", .reserved), ("192.0.2.1", .global),
    ])
    func ipv4Reach(_ text: String, _ reach: IPAddress.Reach) throws {
        #expect(try #require(IPAddress(ipv4: text)).reach == reach, "\(text)")
    }

    @Test func ipv6Reach() throws {
        func v6(_ groups: [UInt16]) throws -> IPAddress {
            try #require(IPAddress(bytes: groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }))
        }
        #expect(try v6([0, 0, 0, 0, 0, 0, 0, 1]).reach == .loopback)
        #expect(try v6([0, 0, 0, 0, 0, 0, 0, 0]).reach == .unspecified)
        #expect(try v6([0xfe80, 0, 0, 0, 0, 0, 0, 1]).reach == .linkLocal)
        #expect(try v6([0xfd00, 0, 0, 0, 0, 0, 0, 1]).reach == .privateNetwork)
        #expect(try v6([0xff02, 0, 0, 0, 0, 0, 0, 1]).reach == .multicast)
        #expect(try v6([0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888]).reach == .global)
        // IPv4 carried in IPv6 reaches the IPv4 address.
        #expect(try v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001]).reach == .loopback)
        #expect(try v6([0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001]).reach == .privateNetwork)
        #expect(try v6([0x64, 0xff9b, 0, 0, 0, 0, 0xa9fe, 0xa9fe]).reach == .linkLocal)
        #expect(try v6([0, 0, 0, 0, 0, 0xffff, 0x0808, 0x0808]).reach == .global)
        #expect(try v6([0x0100, 0, 0, 0, 0, 0, 0, 1]).reach == .reserved)
        // 6to4 reaches the IPv4 address it carries; Teredo and documentation addresses are no public host.
        #expect(try v6([0x2002, 0x0a00, 0x0001, 0, 0, 0, 0, 1]).reach == .privateNetwork)
        #expect(try v6([0x2002, 0x0808, 0x0808, 0, 0, 0, 0, 1]).reach == .global)
        #expect(try v6([0x2001, 0x0000, 0x4136, 0xe378, 0x8000, 0x63bf, 0x3fff, 0xfdd2]).reach == .reserved)
        #expect(try v6([0x2001, 0x0db8, 0, 0, 0, 0, 0, 1]).reach == .reserved)
    }

    // MARK: Targets

    @Test func urlsAreParsedStrictly() throws {
        let target = try WebhookTarget(parsing: "https://Hooks.Example.com./consent?tenant=acme")
        #expect(target.host == "hooks.example.com" && target.port == 443 && target.scheme == .https)
        #expect(try WebhookTarget(parsing: "http://[::1]:8080/x").host == "::1")
        #expect(try WebhookTarget(parsing: "http://127.0.0.1:8080/x").port == 8080)
        let refusals: [(String, WebhookTargetRefusal)] = [
            ("ftp://example.com/", .scheme("ftp")), ("https://u:p@example.com/", .credentials),
            ("https://u@example.com/", .credentials), ("https://example.com/#frag", .fragment),
            ("example.com/hook", .notAURL), ("https:///hook", .notAURL), ("https://exa mple.com/", .notAURL),
            ("javascript:alert(1)", .scheme("javascript")),
        ]
        for (text, refusal) in refusals {
            #expect(throws: refusal, "\(text)") { try WebhookTarget(parsing: text) }
        }
    }

    @Test func thePolicyRefusesEveryNonPublicAddressAndPlainHTTP() throws {
        let strict = WebhookTargetPolicy()
        let local = WebhookTargetPolicy(allowLoopback: true)
        let https = try WebhookTarget(parsing: "https://hooks.example.com/")
        let http = try WebhookTarget(parsing: "http://hooks.example.com/")
        let public4 = try #require(IPAddress(ipv4: "198.51.100.7"))
        let loopback = try #require(IPAddress(ipv4: "127.0.0.1"))
        let lan = try #require(IPAddress(ipv4: "10.0.0.7"))
        try strict.check(https, resolvedTo: [public4])
        #expect(throws: WebhookTargetRefusal.address("hooks.example.com", .loopback)) {
            try strict.check(https, resolvedTo: [loopback])
        }
        // A name with one public and one private address is refused: the connection may use either.
        #expect(throws: WebhookTargetRefusal.address("hooks.example.com", .privateNetwork)) {
            try strict.check(https, resolvedTo: [public4, lan])
        }
        #expect(throws: WebhookTargetRefusal.unresolved("hooks.example.com")) {
            try strict.check(https, resolvedTo: [])
        }
        #expect(throws: WebhookTargetRefusal.plainHTTP) { try strict.check(http, resolvedTo: [public4]) }
        #expect(throws: WebhookTargetRefusal.plainHTTP) { try strict.checkScheme(http) }
        // With loopback allowed: loopback over http or https, but still no private network and no plain http
        // elsewhere.
        try local.check(http, resolvedTo: [loopback])
        try local.check(https, resolvedTo: [loopback])
        #expect(throws: WebhookTargetRefusal.plainHTTP) { try local.check(http, resolvedTo: [public4]) }
        #expect(throws: WebhookTargetRefusal.address("hooks.example.com", .privateNetwork)) {
            try local.check(https, resolvedTo: [lan])
        }
    }

    // MARK: Retries

    @Test func retriesBackOffWithJitterAndLastOverADay() {
        let schedule = WebhookRetrySchedule.standard
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(schedule.delayCeiling(afterAttempt: 1) == 15)
        #expect(schedule.delayCeiling(afterAttempt: 2) == 30)
        #expect(schedule.delayCeiling(afterAttempt: 30) == 4 * 3600)
        // Jitter draws each delay from the upper half of its ceiling.
        for unit in [0.0, 0.5, 0.999] {
            guard case .retry(let at) = schedule.afterFailure(attempt: 3, firstAttemptAt: start, now: start, unit: unit)
            else {
                Issue.record("attempt 3 gave up")
                continue
            }
            let delay = at.timeIntervalSince(start)
            #expect(delay >= 30 && delay < 60)
        }
        // Walk the schedule with the shortest draws: it keeps retrying for more than 24 hours.
        var now = start
        var attempt = 1
        while case .retry(let at) = schedule.afterFailure(attempt: attempt, firstAttemptAt: start, now: now, unit: 0) {
            now = at
            attempt += 1
            if attempt > 1000 { break }
        }
        #expect(now.timeIntervalSince(start) >= 24 * 3600, "gave up after \(now.timeIntervalSince(start) / 3600) h")
        #expect(now.timeIntervalSince(start) < 30 * 3600)
        #expect(attempt >= schedule.minimumAttempts && attempt < 40)
        // And with the longest draws it still ends.
        var longest = start
        var count = 1
        while case .retry(let at) = schedule.afterFailure(attempt: count, firstAttemptAt: start, now: longest, unit: 1)
        {
            longest = at
            count += 1
            if count > 1000 { break }
        }
        #expect(count < 40 && longest.timeIntervalSince(start) >= 24 * 3600)
    }

    @Test func everySubscribableTypeIsNamedAndTheTestTypeIsNot() {
        #expect(
            Set(WebhookEventType.subscribable.map(\.rawValue)) == [
                "consent.granted", "consent.withdrawn", "consent.superseded", "subject.erased", "objection.recorded",
                "request.due_soon", "template.status_changed",
            ])
        #expect(!WebhookEventType.subscribable.contains(.test))
    }
}
