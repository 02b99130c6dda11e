/// The messaging platform's categories; a purpose belongs to exactly one.
public enum PurposeCategory: String, Sendable, Codable, CaseIterable {
    case utility
    case marketing
    case authentication
}

/// A kind of message a person may consent to. Built-ins are the platform's notification kinds (domain brief);
/// tenants add their own, each naming a category.
public struct Purpose: Sendable, Equatable, Codable {
    public let key: String
    public let name: String
    public let category: PurposeCategory
    public let builtIn: Bool

    public init(key: String, name: String, category: PurposeCategory, builtIn: Bool) {
        self.key = key
        self.name = name
        self.category = category
        self.builtIn = builtIn
    }

    /// The catalogue seeded by `sql/migrations/0002_consent_lifecycle.sql`; a test keeps the two equal.
    public static let builtIns: [Purpose] =
        ([
            ("account_update", "Account updates", .utility),
            ("payment_update", "Payment updates", .utility),
            ("shipping_update", "Shipping updates", .utility),
            ("personal_finance_update", "Personal finance updates", .utility),
            ("reservation_update", "Reservation updates", .utility),
            ("appointment_update", "Appointment updates", .utility),
            ("transportation_update", "Transportation updates", .utility),
            ("ticket_update", "Ticket updates", .utility),
            ("alert_update", "Alert updates", .utility),
            ("issue_resolution", "Issue resolution", .utility),
            ("marketing", "Marketing", .marketing),
            ("authentication", "One-time passwords", .authentication),
        ] as [(String, String, PurposeCategory)]).map { Purpose(key: $0.0, name: $0.1, category: $0.2, builtIn: true) }

    /// Restarting a care conversation the window cut off: allowed only after the person wrote (seed §3.10).
    public static let issueResolution = "issue_resolution"

    /// Lower-case letters, digits and underscores, starting with a letter, 2 to 63 characters.
    public static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard (2...63).contains(bytes.count), (97...122).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 }
    }
}
