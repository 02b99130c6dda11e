import Foundation

/// One period of the platform's pricing: from `effectiveFrom` until the next rule, which message categories are paid
/// inside the 24-hour customer-care window and which outside it, and whether a conversation started from an ad opens
/// a free entry-point window. Rules are data so that a deployment can add the platform's next change without a
/// release (`PricingRulebook.adding(fileContents:)`).
public struct PricingRule: Sendable, Equatable, Codable {
    /// The id a check answers as `pricingRule`, for example `whatsapp-2026-10`.
    public let id: String
    /// Messages delivered at or after this instant are priced by this rule.
    public let effectiveFrom: Date
    /// Where the rule comes from, for `docs/messaging-rules.md` and for the DPO asking why a message was paid.
    public let source: String
    public let paidInsideWindow: Set<MessageCategory>
    public let paidOutsideWindow: Set<MessageCategory>
    /// How long every message is free after an inbound message from an ad; nil when the rule has no such window.
    public let freeEntryPointHours: Int?

    public init(
        id: String, effectiveFrom: Date, source: String, paidInsideWindow: Set<MessageCategory>,
        paidOutsideWindow: Set<MessageCategory>, freeEntryPointHours: Int?
    ) {
        self.id = id
        self.effectiveFrom = effectiveFrom
        self.source = source
        self.paidInsideWindow = paidInsideWindow
        self.paidOutsideWindow = paidOutsideWindow
        self.freeEntryPointHours = freeEntryPointHours
    }

    /// Whether a message of this category, delivered with the window open or closed, is paid under this rule.
    public func isPaid(_ category: MessageCategory, windowOpen: Bool) -> Bool {
        (windowOpen ? paidInsideWindow : paidOutsideWindow).contains(category)
    }
}

public enum PricingRulebookError: Error, Equatable, CustomStringConvertible {
    case empty
    case duplicateId(String)
    case sameEffectiveTime(String, String)
    case malformed(String)
    case nonPositiveEntryPoint(String)

    public var description: String {
        switch self {
        case .empty: "a pricing rulebook needs at least one rule"
        case .duplicateId(let id): "pricing rule '\(id)' is defined twice"
        case .sameEffectiveTime(let a, let b): "pricing rules '\(a)' and '\(b)' take effect at the same instant"
        case .malformed(let why): "the pricing rules file cannot be read: \(why)"
        case .nonPositiveEntryPoint(let id): "pricing rule '\(id)': freeEntryPointHours must be positive"
        }
    }
}

/// The dated pricing rules, in effect order. `rule(at:)` is the rule for a message delivered at that instant.
public struct PricingRulebook: Sendable, Equatable {
    public let rules: [PricingRule]

    public init(_ rules: [PricingRule]) throws(PricingRulebookError) {
        guard !rules.isEmpty else { throw .empty }
        let sorted = rules.sorted { $0.effectiveFrom < $1.effectiveFrom }
        var ids = Set<String>()
        for (index, rule) in sorted.enumerated() {
            guard ids.insert(rule.id).inserted else { throw .duplicateId(rule.id) }
            if let hours = rule.freeEntryPointHours, hours <= 0 { throw .nonPositiveEntryPoint(rule.id) }
            if index > 0, sorted[index - 1].effectiveFrom == rule.effectiveFrom {
                throw .sameEffectiveTime(sorted[index - 1].id, rule.id)
            }
        }
        self.rules = sorted
    }

    /// The rule in effect at `instant`: the last to take effect at or before it. Before the first rule, the first.
    public func rule(at instant: Date) -> PricingRule {
        var low = 0
        var high = rules.count
        while low < high {
            let middle = (low + high) / 2
            if rules[middle].effectiveFrom <= instant { low = middle + 1 } else { high = middle }
        }
        return rules[max(low - 1, 0)]
    }

    /// This rulebook with a deployment's own rules added (JSON: `{"rules": [{"id", "effectiveFrom" (RFC 3339),
    /// "source", "paidInsideWindow": [...], "paidOutsideWindow": [...], "freeEntryPointHours"?}]}`), for a price
    /// change announced after the release. A rule may not reuse a built-in id or effective instant.
    public func adding(fileContents data: Data) throws(PricingRulebookError) -> PricingRulebook {
        struct File: Decodable { let rules: [PricingRule] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let file: File
        do {
            file = try decoder.decode(File.self, from: data)
        } catch {
            throw .malformed(String(describing: error))
        }
        return try PricingRulebook(rules + file.rules)
    }
}

extension PricingRulebook {
    private static func utc(_ text: String) -> Date {
        // The literals below are well-formed; a typo fails every pricing test rather than a request.
        guard let date = RFC3339.parse(text) else { preconditionFailure("bad built-in date \(text)") }
        return date
    }

    /// The WhatsApp Business Platform's pricing as the domain brief states it (`shared/domain.md`, "Pricing, by the
    /// time a message is delivered"); `docs/messaging-rules.md` gives each rule with its source.
    public static let whatsapp: PricingRulebook = {
        let templates: Set<MessageCategory> = [.marketing, .utility, .authentication]
        let rules = [
            // Conversation-based pricing (the seed, 2019): a template outside the window opens a paid conversation;
            // inside the window, templates and free-form messages are free.
            PricingRule(
                id: "whatsapp-2019", effectiveFrom: utc("1970-01-01T00:00:00Z"),
                source: "WhatsApp Business conversation-based pricing, as in the seed document (June 2019)",
                paidInsideWindow: [], paidOutsideWindow: templates, freeEntryPointHours: nil),
            // Per-message pricing: marketing and authentication templates are paid everywhere, utility templates
            // only outside the window; entry points from ads are free.
            PricingRule(
                id: "whatsapp-2025-07", effectiveFrom: utc("2025-07-01T00:00:00Z"),
                source: "WhatsApp Business Platform pricing, per-message pricing from 1 July 2025",
                paidInsideWindow: [.marketing, .authentication], paidOutsideWindow: templates,
                freeEntryPointHours: 72),
            // Utility templates and free-form service messages inside the window are paid too.
            PricingRule(
                id: "whatsapp-2026-10", effectiveFrom: utc("2026-10-01T00:00:00Z"),
                source: "WhatsApp Business Platform pricing update effective 1 October 2026",
                paidInsideWindow: [.marketing, .authentication, .utility, .service], paidOutsideWindow: templates,
                freeEntryPointHours: 72),
        ]
        do {
            return try PricingRulebook(rules)
        } catch {
            preconditionFailure("the built-in pricing rules are inconsistent: \(error)")
        }
    }()
}
