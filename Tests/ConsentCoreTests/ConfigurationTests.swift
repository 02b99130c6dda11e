import Foundation
import Testing

@testable import ConsentCore

@Suite struct DatabaseURLTests {
    @Test func tcpURL() throws {
        let url = try DatabaseURL(parsing: "postgres://app:s%40cret@db.internal:6543/consent?sslmode=require")
        #expect(url.endpoint == .tcp(host: "db.internal", port: 6543))
        #expect(url.username == "app")
        #expect(url.password == "s@cret")
        #expect(url.database == "consent")
        #expect(url.tls == .require)
    }

    @Test func localTCPDefaultsToNoTLSAndRemoteToRequire() throws {
        #expect(try DatabaseURL(parsing: "postgresql://u@localhost/d").tls == .disable)
        #expect(try DatabaseURL(parsing: "postgresql://u@db.example/d").tls == .require)
        #expect(try DatabaseURL(parsing: "postgresql://u@db.example/d?sslmode=prefer").tls == .prefer)
        #expect(try DatabaseURL(parsing: "postgresql://u@localhost/d").endpoint == .tcp(host: "localhost", port: 5432))
    }

    @Test func unixSocketByHostParameterOrEncodedHost() throws {
        let byParameter = try DatabaseURL(parsing: "postgres://u@localhost:5433/d?host=/tmp/pg")
        #expect(byParameter.endpoint == .unixSocket(path: "/tmp/pg/.s.PGSQL.5433"))
        let byHost = try DatabaseURL(parsing: "postgres://u@%2Fvar%2Frun%2Fpostgresql/d")
        #expect(byHost.endpoint == .unixSocket(path: "/var/run/postgresql/.s.PGSQL.5432"))
    }

    @Test(arguments: [
        ("mysql://u@h/d", "is not a postgres:// URL"),
        ("postgres://h/d", "names no user"),
        ("postgres://u@h", "names no database"),
        ("postgres://u@h/d?sslmode=sometimes", "has an unknown sslmode 'sometimes'"),
        ("postgres://u@h:0/d", "has a port outside 1-65535"),
        ("not a url", "is not a postgres:// URL"),
    ])
    func invalidURLsSayWhy(text: String, problem: String) {
        #expect(throws: DatabaseURL.Invalid(problem: problem)) { try DatabaseURL(parsing: text) }
    }

    @Test func urlStringRoundTripsAndRedactionHidesThePassword() throws {
        for text in [
            "postgres://app:pw@db:6543/consent?sslmode=require",
            "postgres://u@localhost:5432/d?host=/tmp/pg&sslmode=disable",
        ] {
            let url = try DatabaseURL(parsing: text)
            #expect(try DatabaseURL(parsing: url.urlString) == url)
            #expect(!url.redacted.contains("pw"))
        }
    }
}

@Suite struct ServeConfigurationTests {
    static let key = Data(repeating: 7, count: 32).base64EncodedString()
    static let complete = [
        "DATABASE_URL": "postgres://consentd_app@localhost/consentd",
        "CONSENTD_MASTER_KEY": key,
        "CONSENTD_SIGNING_KEY": key,
    ]

    @Test func defaults() throws {
        let configuration = try ServeConfiguration.parse(environment: Self.complete)
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.allowPrivilegedRole == false)
        #expect(configuration.auditOrigin == "consentledger")
        #expect(configuration.masterKey.bytes == Array(repeating: 7, count: 32))
        #expect(!"\(configuration.masterKey)".contains("7, 7"))
    }

    @Test func explicitValues() throws {
        var environment = Self.complete
        environment["CONSENTD_HOST"] = "0.0.0.0"
        environment["CONSENTD_PORT"] = "9000"
        environment["CONSENTD_ALLOW_PRIVILEGED_ROLE"] = "true"
        environment["CONSENTD_AUDIT_ORIGIN"] = "consent.example.com"
        let configuration = try ServeConfiguration.parse(environment: environment)
        #expect(try configuration.checkpointSigner().origin(for: "acme") == "consent.example.com/acme")
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 9000)
        #expect(configuration.allowPrivilegedRole)
    }

    /// `/metrics` has a listener of its own: loopback on 9464 unless told otherwise, and none at all when `off`.
    @Test func theMetricsListenerDefaultsToLoopbackAndCanBeTurnedOff() throws {
        #expect(
            try ServeConfiguration.parse(environment: Self.complete).metrics
                == ListenAddress(host: "127.0.0.1", port: 9464))
        var environment = Self.complete
        environment["CONSENTD_METRICS_HOST"] = "0.0.0.0"
        environment["CONSENTD_METRICS_PORT"] = "9100"
        #expect(
            try ServeConfiguration.parse(environment: environment).metrics == ListenAddress(host: "0.0.0.0", port: 9100)
        )
        environment["CONSENTD_METRICS_PORT"] = "off"
        #expect(try ServeConfiguration.parse(environment: environment).metrics == nil)
    }

    /// `serve` sends change webhooks to public https addresses only, unless the operator lets a loopback test
    /// receiver in; a value that is not a flag stops the start.
    @Test func webhooksGoToLoopbackOnlyWhenTheOperatorSaysSo() throws {
        #expect(try ServeConfiguration.parse(environment: Self.complete).webhookTargets.allowLoopback == false)
        var environment = Self.complete
        environment["CONSENTD_WEBHOOK_ALLOW_LOOPBACK"] = "true"
        #expect(try ServeConfiguration.parse(environment: environment).webhookTargets.allowLoopback)
        environment["CONSENTD_WEBHOOK_ALLOW_LOOPBACK"] = "yes please"
        #expect(throws: ConfigurationError.self) { try ServeConfiguration.parse(environment: environment) }
    }

    /// The limit before authentication has its own variable, separate from the per-scope ones.
    @Test func theFailedAuthenticationLimitIsConfigurable() throws {
        #expect(
            try ServeConfiguration.parse(environment: Self.complete).rateLimits.failedAuthentication
                == RateLimits.Limit(perSecond: 10, burst: 50))
        var environment = Self.complete
        environment["CONSENTD_RATE_LIMIT_FAILED_AUTH"] = "2/5"
        #expect(
            try ServeConfiguration.parse(environment: environment).rateLimits.failedAuthentication
                == RateLimits.Limit(perSecond: 2, burst: 5))
    }

    /// Every way the environment can be wrong is refused, naming the variable.
    @Test(
        arguments: [
            ("DATABASE_URL", nil), ("DATABASE_URL", "http://x/y"), ("DATABASE_URL", ""),
            ("CONSENTD_MASTER_KEY", nil), ("CONSENTD_MASTER_KEY", "not base64!"),
            ("CONSENTD_MASTER_KEY", Data(repeating: 1, count: 16).base64EncodedString()),
            ("CONSENTD_SIGNING_KEY", nil),
            ("CONSENTD_SIGNING_KEY", Data(repeating: 1, count: 33).base64EncodedString()),
            ("CONSENTD_PORT", "-1"), ("CONSENTD_PORT", "70000"), ("CONSENTD_PORT", "http"),
            ("CONSENTD_HOST", ""), ("CONSENTD_HOST", "a host"),
            ("CONSENTD_ALLOW_PRIVILEGED_ROLE", "maybe"),
            ("CONSENTD_AUDIT_ORIGIN", ""), ("CONSENTD_AUDIT_ORIGIN", "consent example"),
            ("CONSENTD_AUDIT_ORIGIN", "a+b"),
            ("CONSENTD_AUDIT_ORIGIN", "consent.example/"),
            ("CONSENTD_METRICS_PORT", "metrics"), ("CONSENTD_METRICS_HOST", "a host"),
            ("CONSENTD_RATE_LIMIT_FAILED_AUTH", "10"), ("CONSENTD_RATE_LIMIT_FAILED_AUTH", "0/5"),
        ] as [(String, String?)])
    func badVariableIsNamed(variable: String, value: String?) {
        var environment = Self.complete
        environment[variable] = value
        do {
            _ = try ServeConfiguration.parse(environment: environment)
            Issue.record("accepted \(variable)=\(value ?? "<unset>")")
        } catch {
            #expect(error.variable == variable)
            #expect(error.description.hasPrefix(variable))
        }
    }

    @Test func roleNames() throws {
        #expect(try EnvironmentReader.roleName([:], "CONSENTD_APP_ROLE", default: "consentd_app") == "consentd_app")
        #expect(
            try EnvironmentReader.roleName(["CONSENTD_APP_ROLE": "svc_2"], "CONSENTD_APP_ROLE", default: "x") == "svc_2"
        )
        for bad in ["Svc", "2svc", "a\"b", "", "svc-x"] {
            #expect(throws: ConfigurationError.self) {
                try EnvironmentReader.roleName(["CONSENTD_APP_ROLE": bad], "CONSENTD_APP_ROLE", default: "x")
            }
        }
    }

    @Test func aDeploymentAddsPricingRulesFromAFileAndSetsTheLookback() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let good = directory.appendingPathComponent("rules.json")
        try Data(
            #"{"rules": [{"id": "whatsapp-2027-04", "effectiveFrom": "2027-04-01T00:00:00Z", "source": "notice", "paidInsideWindow": ["marketing"], "paidOutsideWindow": ["marketing"]}]}"#
                .utf8
        ).write(to: good)
        let policy = try EnvironmentReader.sendPolicy([
            "CONSENTD_PRICING_RULES": good.path, "CONSENTD_ISSUE_RESOLUTION_LOOKBACK_DAYS": "14",
        ])
        #expect(policy.pricing.rules.last?.id == "whatsapp-2027-04")
        #expect(policy.issueResolutionLookback == 14 * 86_400)
        #expect(try EnvironmentReader.sendPolicy([:]) == .standard)
        let broken = directory.appendingPathComponent("broken.json")
        try Data(#"{"rules": [{"id": "whatsapp-2019"}]}"#.utf8).write(to: broken)
        for (variable, value) in [
            ("CONSENTD_PRICING_RULES", broken.path),
            ("CONSENTD_PRICING_RULES", directory.appendingPathComponent("none").path),
            ("CONSENTD_ISSUE_RESOLUTION_LOOKBACK_DAYS", "0"),
        ] {
            #expect(throws: ConfigurationError.self, "\(variable)=\(value)") {
                try EnvironmentReader.sendPolicy([variable: value])
            }
        }
    }
}
