/// Where one consent stands. The raw values are the `consents.status` CHECK constraint's (sql/migrations/0012);
/// a store test keeps the two equal.
public enum ConsentStatus: String, Sendable, CaseIterable, Codable {
    case granted
    /// A double opt-in waiting for the person's confirmation: checks answer no.
    case pending
    case withdrawn
    /// A double opt-in never confirmed in time.
    case expired
    /// An opt-in collected before a later stop covering its purpose (a withdrawal, STOP or objection): kept as
    /// evidence, never in force. The latest event by its own time wins.
    case superseded

    /// Granted or pending: the one consent a subject holds for a purpose at a time.
    public var isActive: Bool { self == .granted || self == .pending }
}
