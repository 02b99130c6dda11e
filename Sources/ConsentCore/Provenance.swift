import Foundation

/// How an opt-in was collected.
public enum CollectionMethod: String, Sendable, Codable, CaseIterable {
    case checkbox
    case doubleOptIn = "double_opt_in"
    case verbal
    case `import`
    case api

    /// A double opt-in is pending until the person confirms it.
    public var startsPending: Bool { self == .doubleOptIn }

    /// What an opt-in collected this way records: pending until confirmed, or granted.
    public var recordedStatus: ConsentStatus { startsPending ? .pending : .granted }
}

/// Who or what withdrew a consent.
public enum RevocationSource: String, Sendable, Codable, CaseIterable {
    case api
    case stopKeyword = "stop_keyword"
    case selfService = "self_service"
    case dpo
    /// The channel's own opt-out, on the person's behalf: WhatsApp's "stop marketing messages".
    case channelPreference = "channel_preference"
    /// An objection (Art. 21) for its scope.
    case objection
    /// An opt-out in the person's own words inside a longer message: marketing is withdrawn at once.
    case optOutPhrase = "opt_out_phrase"
    /// The platform's "Stop promotions" quick-reply button, or the tenant's own stop button.
    case stopButton = "stop_button"
    /// A DPO resolving an opt-out review by withdrawing everything.
    case optOutReview = "opt_out_review"
}

/// Where and how an opt-in was collected, as stored (encrypted under the subject's data key) with the consent.
public struct Provenance: Sendable, Equatable, Codable {
    public let pageUrl: String
    public let userAgent: String?
    public let ipAddress: String?
    /// The widget's answer per box (one box per category the notice covers): which boxes the person ticked, kept
    /// as evidence that marketing was not bundled with order updates. Nil for opt-ins made elsewhere.
    public let boxes: [String: Bool]?
    /// The `Origin` of the page that sent a widget's decision, as the browser named it and the tenant allowed it.
    /// Nil for opt-ins made elsewhere, and for decisions recorded before it was kept.
    public let origin: String?
    /// For an imported opt-in, the system the row came from (a CRM, a newsletter tool), as the file named it. Nil
    /// for opt-ins collected by this service. An imported row without a page has an empty `pageUrl`.
    public let source: String?
    /// For an imported opt-in, the method the file said the opt-in was first collected by (a legacy double opt-in,
    /// a checkbox), kept as evidence only: an import is recorded, and judged against stops and objections, as an
    /// `import` whatever it claims, since the claim cannot be checked.
    public let claimedMethod: CollectionMethod?

    public init(
        pageUrl: String, userAgent: String?, ipAddress: String?, boxes: [String: Bool]? = nil, origin: String? = nil,
        source: String? = nil, claimedMethod: CollectionMethod? = nil
    ) {
        self.pageUrl = pageUrl
        self.userAgent = userAgent
        self.ipAddress = ipAddress
        self.boxes = boxes
        self.origin = origin
        self.source = source
        self.claimedMethod = claimedMethod
    }

    public enum Invalid: Error, Equatable {
        case pageUrl(String)
        case userAgent(String)
        case ipAddress(String)
    }

    public static let maxURLLength = 2048
    public static let maxUserAgentLength = 1024

    /// Checks the fields and returns them trimmed; the error names the field and what is wrong with it.
    public static func validated(pageUrl: String, userAgent: String?, ipAddress: String?) throws(Invalid) -> Provenance
    {
        let page = pageUrl.trimmingCharacters(in: .whitespaces)
        guard page.utf8.count <= maxURLLength else { throw .pageUrl("must be at most \(maxURLLength) bytes") }
        guard let url = URLComponents(string: page), let scheme = url.scheme?.lowercased(),
            ["http", "https"].contains(scheme), let host = url.host, !host.isEmpty
        else { throw .pageUrl("must be an absolute http or https URL") }
        if let userAgent, userAgent.unicodeScalars.count > maxUserAgentLength {
            throw .userAgent("must be at most \(maxUserAgentLength) characters")
        }
        var address: String?
        if let ipAddress {
            guard let normalised = IPAddressText.normalised(ipAddress) else {
                throw .ipAddress("must be an IPv4 or IPv6 address")
            }
            address = normalised
        }
        return Provenance(pageUrl: page, userAgent: userAgent, ipAddress: address)
    }
}

/// IPv4 dotted quads and IPv6 text forms, validated with the C library's parser.
public enum IPAddressText {
    public static func normalised(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 45 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, trimmed, &v4) == 1 { return trimmed }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, trimmed, &v6) == 1 { return trimmed.lowercased() }
        return nil
    }
}
