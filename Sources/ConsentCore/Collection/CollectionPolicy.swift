import Foundation

/// How long the tokens and pending states of consent collection live, and where the service's public pages are.
public struct CollectionPolicy: Sendable, Equatable {
    /// A double opt-in not confirmed within this time expires (`CONSENTD_PENDING_CONSENT_HOURS`, default 7 days).
    public var pendingConsentLifetime: TimeInterval
    /// A checkout's consent session token (`CONSENTD_CONSENT_SESSION_MINUTES`, default 15 minutes).
    public var consentSessionLifetime: TimeInterval
    /// A self-service link (`CONSENTD_SELF_SERVICE_LINK_DAYS`, default 30 days).
    public var selfServiceLinkLifetime: TimeInterval
    /// The origin people's browsers reach this service at (`CONSENTD_PUBLIC_URL`), for the links it hands out.
    /// Nil: `http://<host>:<port>` of the server itself.
    public var publicBaseURL: String?
    /// Take the client's address from the last `X-Forwarded-For` entry (`CONSENTD_TRUST_FORWARDED_FOR`): only
    /// behind a proxy that sets it, or anyone could write their own into the provenance.
    public var trustForwardedFor = false

    public static let `default` = CollectionPolicy(
        pendingConsentLifetime: 7 * 86_400, consentSessionLifetime: 15 * 60, selfServiceLinkLifetime: 30 * 86_400,
        publicBaseURL: nil)

    public init(
        pendingConsentLifetime: TimeInterval, consentSessionLifetime: TimeInterval,
        selfServiceLinkLifetime: TimeInterval, publicBaseURL: String?
    ) {
        self.pendingConsentLifetime = pendingConsentLifetime
        self.consentSessionLifetime = consentSessionLifetime
        self.selfServiceLinkLifetime = selfServiceLinkLifetime
        self.publicBaseURL = publicBaseURL
    }

}

extension EnvironmentReader {
    /// `CONSENTD_PENDING_CONSENT_HOURS`, `CONSENTD_CONSENT_SESSION_MINUTES`, `CONSENTD_SELF_SERVICE_LINK_DAYS` and
    /// `CONSENTD_PUBLIC_URL`.
    public static func collection(_ environment: [String: String]) throws(ConfigurationError) -> CollectionPolicy {
        let fallback = CollectionPolicy.default
        var policy = CollectionPolicy(
            pendingConsentLifetime: Double(
                try count(environment, "CONSENTD_PENDING_CONSENT_HOURS", default: 168, range: 1...8_760)) * 3_600,
            consentSessionLifetime: Double(
                try count(environment, "CONSENTD_CONSENT_SESSION_MINUTES", default: 15, range: 1...1_440)) * 60,
            selfServiceLinkLifetime: Double(
                try count(environment, "CONSENTD_SELF_SERVICE_LINK_DAYS", default: 30, range: 1...365)) * 86_400,
            publicBaseURL: fallback.publicBaseURL)
        if let text = environment["CONSENTD_PUBLIC_URL"], !text.isEmpty {
            guard let origin = AllowedOrigin(text.hasSuffix("/") ? String(text.dropLast()) : text) else {
                throw ConfigurationError(
                    variable: "CONSENTD_PUBLIC_URL",
                    problem: "must be an http or https origin such as https://consent.example.com")
            }
            policy.publicBaseURL = origin.text
        }
        policy.trustForwardedFor = try flag(environment, "CONSENTD_TRUST_FORWARDED_FOR")
        return policy
    }
}
