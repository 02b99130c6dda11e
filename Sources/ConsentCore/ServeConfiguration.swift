import Foundation

/// Everything `consentd serve` reads from its environment, validated once at start. Over 300 lines on purpose:
/// each setting of `serve` with its default, its range and its refusal, in one place.
public struct ServeConfiguration: Sendable {
    public var database: DatabaseURL
    /// Wraps the per-subject data keys (AES-256).
    public var masterKey: SecretBytes
    /// Earlier (or next) master keys that may unwrap but never wrap: what a key rotation runs with.
    public var unwrapMasterKeys: [SecretBytes] = []
    /// Public keys that signed checkpoints before `signingKey` did (`CONSENTD_RETIRED_SIGNING_KEYS`): verification
    /// accepts a checkpoint signed by one of these or by the current key, and no other.
    public var retiredSigningKeys: [[UInt8]] = []
    /// Suppression and retention (`CONSENTD_SUPPRESSION`, `CONSENTD_RETENTION_*`).
    public var subjectRights: SubjectRightsPolicy = .default
    /// Consent sessions, double opt-in expiry, self-service links (`CONSENTD_PENDING_CONSENT_HOURS`, …).
    public var collection: CollectionPolicy = .default
    /// Minutes without a request after which a console session ends (`CONSENTD_CONSOLE_IDLE_MINUTES`).
    public var consoleIdleMinutes: Int = 30
    /// Per-key request allowances by scope (`CONSENTD_RATE_LIMIT_<SCOPE>`).
    public var rateLimits: RateLimits = .default
    /// Seconds after which an unanswered request gets a 503 (`CONSENTD_REQUEST_TIMEOUT_SECONDS`).
    public var requestTimeoutSeconds: Int = 30
    /// The dated pricing rules, with a deployment's own added from `CONSENTD_PRICING_RULES` (a JSON file), and the
    /// `issue_resolution` lookback (`CONSENTD_ISSUE_RESOLUTION_LOOKBACK_DAYS`).
    public var sendPolicy: SendPolicy = .standard
    /// How many subjects the check cache holds (`CONSENTD_CHECK_CACHE_ENTRIES`); 0 turns the cache off.
    public var checkCacheEntries: Int = ServeConfiguration.defaultCheckCacheEntries
    public static let defaultCheckCacheEntries = 100_000
    /// The most connections one instance's request pool opens (`CONSENTD_DB_POOL_SIZE`). The change listener and
    /// the two leader roles hold one more each, outside the pool. At least 2: a request holds one connection at a
    /// time, and the second keeps the change listener's heartbeat and the writers' wake-ups from queueing behind it.
    public var databasePoolSize: Int = ServeConfiguration.defaultDatabasePoolSize
    public static let defaultDatabasePoolSize = 20
    /// Ed25519 seed that signs audit checkpoints.
    public var signingKey: SecretBytes
    public var host: String
    public var port: Int
    public var allowPrivilegedRole: Bool
    /// Where `/metrics` is served (`CONSENTD_METRICS_HOST`, default loopback; `CONSENTD_METRICS_PORT`, default
    /// 9464, `off` for none): a listener of its own, never the API's, because the counts of every tenant's decisions
    /// are nobody's business outside the monitoring network (issue 21, finding 4).
    public var metrics: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9464)
    /// Where change webhooks may be sent: loopback receivers only with `CONSENTD_WEBHOOK_ALLOW_LOOPBACK=true` (always
    /// under `consentd dev`), never private networks (`WebhookTargetPolicy`).
    public var webhookTargets = WebhookTargetPolicy()
    /// Names this service in every tenant log's origin, `<auditOrigin>/<tenant>`; should be unique to the deployment.
    public var auditOrigin: String

    public init(
        database: DatabaseURL, masterKey: SecretBytes, signingKey: SecretBytes, host: String = "127.0.0.1",
        port: Int = 8080, allowPrivilegedRole: Bool = false, auditOrigin: String = CheckpointSigner.defaultOriginPrefix
    ) {
        self.database = database
        self.masterKey = masterKey
        self.signingKey = signingKey
        self.host = host
        self.port = port
        self.allowPrivilegedRole = allowPrivilegedRole
        self.auditOrigin = auditOrigin
    }

    public func checkpointSigner() throws -> CheckpointSigner {
        try CheckpointSigner(seed: signingKey, originPrefix: auditOrigin)
    }

    /// Reads and validates the environment; the error names the first variable that is missing or malformed.
    public static func parse(environment: [String: String]) throws(ConfigurationError) -> ServeConfiguration {
        let database = try EnvironmentReader.databaseURL(environment)
        let masterKey = try EnvironmentReader.key32(environment, "CONSENTD_MASTER_KEY", purpose: "wraps data keys")
        let signingKey = try EnvironmentReader.key32(environment, "CONSENTD_SIGNING_KEY", purpose: "Ed25519 seed")
        let host = environment["CONSENTD_HOST"] ?? "127.0.0.1"
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
            throw ConfigurationError(variable: "CONSENTD_HOST", problem: "must be a host name or address")
        }
        let port = try EnvironmentReader.port(environment, "CONSENTD_PORT", default: 8080)
        let allow = try EnvironmentReader.flag(environment, "CONSENTD_ALLOW_PRIVILEGED_ROLE")
        let origin = try EnvironmentReader.auditOrigin(environment)
        var configuration = ServeConfiguration(
            database: database, masterKey: masterKey, signingKey: signingKey, host: host, port: port,
            allowPrivilegedRole: allow, auditOrigin: origin)
        configuration.unwrapMasterKeys = try EnvironmentReader.unwrapMasterKeys(environment)
        configuration.retiredSigningKeys = try EnvironmentReader.retiredSigningKeys(environment)
        configuration.subjectRights = try EnvironmentReader.subjectRights(environment)
        try configuration.readTuning(environment)
        return configuration
    }

    /// The variables that tune a server but do not say which one it is; `consentd dev` reads them too.
    public mutating func readTuning(_ environment: [String: String]) throws(ConfigurationError) {
        metrics = try EnvironmentReader.metricsAddress(environment)
        checkCacheEntries = try EnvironmentReader.count(
            environment, "CONSENTD_CHECK_CACHE_ENTRIES", default: Self.defaultCheckCacheEntries, range: 0...50_000_000)
        databasePoolSize = try EnvironmentReader.count(
            environment, "CONSENTD_DB_POOL_SIZE", default: Self.defaultDatabasePoolSize, range: 2...1000)
        collection = try EnvironmentReader.collection(environment)
        consoleIdleMinutes = try EnvironmentReader.count(
            environment, "CONSENTD_CONSOLE_IDLE_MINUTES", default: 30, range: 1...1440)
        rateLimits = try EnvironmentReader.rateLimits(environment)
        requestTimeoutSeconds = try EnvironmentReader.count(
            environment, "CONSENTD_REQUEST_TIMEOUT_SECONDS", default: 30, range: 1...600)
        sendPolicy = try EnvironmentReader.sendPolicy(environment)
        if try EnvironmentReader.flag(environment, "CONSENTD_WEBHOOK_ALLOW_LOOPBACK") {
            webhookTargets.allowLoopback = true
        }
    }
}

extension EnvironmentReader {
    /// The platform's next price change is added by a file named in `CONSENTD_PRICING_RULES`, read at start: a
    /// broken file stops the start rather than price a message wrongly.
    public static func sendPolicy(_ environment: [String: String]) throws(ConfigurationError) -> SendPolicy {
        let days = try count(environment, "CONSENTD_ISSUE_RESOLUTION_LOOKBACK_DAYS", default: 30, range: 1...365)
        var pricing = PricingRulebook.whatsapp
        if let path = environment["CONSENTD_PRICING_RULES"], !path.isEmpty {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ConfigurationError(
                    variable: "CONSENTD_PRICING_RULES", problem: "names a file that cannot be read")
            }
            do {
                pricing = try pricing.adding(fileContents: data)
            } catch {
                throw ConfigurationError(variable: "CONSENTD_PRICING_RULES", problem: "is refused: \(error)")
            }
        }
        return SendPolicy(pricing: pricing, issueResolutionLookback: TimeInterval(days) * 86_400)
    }
}

/// Key material that must never be printed.
public struct SecretBytes: Sendable, Equatable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var description: String { "SecretBytes(\(bytes.count) bytes, redacted)" }

    /// 32 bytes from the system's secure random generator, as the dev command and the docs' key commands make.
    public static func random32() -> SecretBytes {
        var generator = SystemRandomNumberGenerator()
        return SecretBytes((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    public var base64: String { Data(bytes).base64EncodedString() }
}

public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    public let variable: String
    public let problem: String
    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }
    public var description: String { "\(variable) \(problem)" }
}

/// Shared readers so every command words the same mistake the same way.
public enum EnvironmentReader {
    public static func databaseURL(_ environment: [String: String]) throws(ConfigurationError) -> DatabaseURL {
        guard let text = environment["DATABASE_URL"], !text.isEmpty else {
            throw ConfigurationError(
                variable: "DATABASE_URL", problem: "is not set; expected postgres://user@host:port/database")
        }
        do {
            return try DatabaseURL(parsing: text)
        } catch {
            throw ConfigurationError(variable: "DATABASE_URL", problem: error.problem)
        }
    }

    public static func key32(_ environment: [String: String], _ name: String, purpose: String)
        throws(ConfigurationError)
        -> SecretBytes
    {
        guard let text = environment[name], !text.isEmpty else {
            throw ConfigurationError(
                variable: name,
                problem: "is not set; expected base64 of 32 random bytes (\(purpose)), e.g. `openssl rand -base64 32`")
        }
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigurationError(variable: name, problem: "is not valid base64")
        }
        guard data.count == 32 else {
            throw ConfigurationError(variable: name, problem: "decodes to \(data.count) bytes; expected exactly 32")
        }
        return SecretBytes(Array(data))
    }

    /// `CONSENTD_METRICS_HOST` and `CONSENTD_METRICS_PORT`; nil when the port is `off`.
    public static func metricsAddress(_ environment: [String: String]) throws(ConfigurationError) -> ListenAddress? {
        if environment["CONSENTD_METRICS_PORT"] == "off" { return nil }
        let host = environment["CONSENTD_METRICS_HOST"] ?? "127.0.0.1"
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
            throw ConfigurationError(variable: "CONSENTD_METRICS_HOST", problem: "must be a host name or address")
        }
        return ListenAddress(host: host, port: try port(environment, "CONSENTD_METRICS_PORT", default: 9464))
    }

    public static func port(_ environment: [String: String], _ name: String, default fallback: Int)
        throws(ConfigurationError)
        -> Int
    {
        guard let text = environment[name] else { return fallback }
        // 0 asks the system for a free port (the log line "serving" names the one it got).
        guard let port = Int(text), (0...65535).contains(port) else {
            throw ConfigurationError(variable: name, problem: "must be a port number from 0 to 65535")
        }
        return port
    }

    public static func flag(_ environment: [String: String], _ name: String) throws(ConfigurationError) -> Bool {
        switch environment[name]?.lowercased() {
        case nil, "", "false", "0", "no": return false
        case "true", "1", "yes": return true
        default: throw ConfigurationError(variable: name, problem: "must be true or false")
        }
    }

    /// The prefix of every tenant log's origin (`CONSENTD_AUDIT_ORIGIN`).
    public static func auditOrigin(_ environment: [String: String]) throws(ConfigurationError) -> String {
        let origin = environment["CONSENTD_AUDIT_ORIGIN"] ?? CheckpointSigner.defaultOriginPrefix
        guard SignedNote.isValidKeyName(origin), origin.utf8.count <= 200, !origin.hasSuffix("/") else {
            throw ConfigurationError(
                variable: "CONSENTD_AUDIT_ORIGIN",
                problem: "must name this deployment without spaces or '+', e.g. consent.example.com")
        }
        return origin
    }

    /// `CONSENTD_UNWRAP_MASTER_KEYS`: comma-separated base64 master keys accepted for unwrapping only.
    public static func unwrapMasterKeys(_ environment: [String: String]) throws(ConfigurationError) -> [SecretBytes] {
        try keyList(environment, "CONSENTD_UNWRAP_MASTER_KEYS", of: "master keys").map(SecretBytes.init)
    }

    /// `CONSENTD_RETIRED_SIGNING_KEYS`: comma-separated base64 Ed25519 public keys (32 bytes) of earlier signing keys.
    public static func retiredSigningKeys(_ environment: [String: String]) throws(ConfigurationError) -> [[UInt8]] {
        try keyList(environment, "CONSENTD_RETIRED_SIGNING_KEYS", of: "Ed25519 public keys")
    }

    /// A comma-separated list of base64 32-byte keys; unset or blank is none. The error names the entry, never a key.
    private static func keyList(_ environment: [String: String], _ name: String, of what: String)
        throws(ConfigurationError) -> [[UInt8]]
    {
        guard let text = environment[name], !text.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
        var keys: [[UInt8]] = []
        for (position, part) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            guard let data = Data(base64Encoded: part.trimmingCharacters(in: .whitespaces)), data.count == 32 else {
                throw ConfigurationError(
                    variable: name,
                    problem: "entry \(position + 1) is not base64 of 32 bytes; expected comma-separated \(what)")
            }
            keys.append(Array(data))
        }
        return keys
    }

    /// `CONSENTD_SUPPRESSION` (default true) and the `CONSENTD_RETENTION_*` periods.
    public static func subjectRights(_ environment: [String: String]) throws(ConfigurationError) -> SubjectRightsPolicy
    {
        let fallback = RetentionPolicy.default
        // On unless switched off: the flag reader's own default is false.
        let suppression =
            (environment["CONSENTD_SUPPRESSION"] ?? "").isEmpty ? true : try flag(environment, "CONSENTD_SUPPRESSION")
        return SubjectRightsPolicy(
            suppression: suppression,
            retention: RetentionPolicy(
                interactionDays: try count(
                    environment, "CONSENTD_RETENTION_INTERACTION_DAYS", default: fallback.interactionDays,
                    range: 1...36_500),
                withdrawnProvenanceYears: try count(
                    environment, "CONSENTD_RETENTION_PROVENANCE_YEARS", default: fallback.withdrawnProvenanceYears,
                    range: 1...100),
                idempotencyDays: try count(
                    environment, "CONSENTD_RETENTION_IDEMPOTENCY_DAYS", default: fallback.idempotencyDays,
                    range: 1...3650)))
    }

    public static func count(
        _ environment: [String: String], _ name: String, default fallback: Int, range: ClosedRange<Int>
    )
        throws(ConfigurationError) -> Int
    {
        guard let text = environment[name], !text.isEmpty else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigurationError(
                variable: name, problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A PostgreSQL role name we create and quote ourselves: kept to a plain identifier.
    public static func roleName(_ environment: [String: String], _ name: String, default fallback: String)
        throws(ConfigurationError) -> String
    {
        let value = environment[name] ?? fallback
        let bytes = Array(value.utf8)
        let valid =
            (1...63).contains(bytes.count)
            && bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
            && !(48...57).contains(bytes[0])
        guard valid else {
            throw ConfigurationError(
                variable: name, problem: "must be a lower-case identifier (a-z, 0-9, _), at most 63 characters")
        }
        return value
    }
}

/// A host and port a listener binds.
public struct ListenAddress: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}
