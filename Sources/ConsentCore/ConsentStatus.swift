/// Where one consent stands. The raw values are the `consents.status` CHECK constraint's (sql/migrations/0005);
/// a store test keeps the two equal.
public enum ConsentStatus: String, Sendable, CaseIterable, Codable {
    case granted
    /// A double opt-in waiting for the person's confirmation: checks answer no.
    case pending
    case withdrawn
    /// A double opt-in never confirmed in time.
    case expired

    /// Granted or pending: the one consent a subject holds for a purpose at a time.
    public var isActive: Bool { self == .granted || self == .pending }
}
