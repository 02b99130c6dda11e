/// What a change webhook announces. An endpoint subscribes to some of these; each is derived from the audit event
/// of the change (sql/migrations/0019, `app_webhook_type`), so the two lists stay one: a store test keeps this enum
/// equal to the SQL mapping's targets.
public enum WebhookEventType: String, Sendable, CaseIterable, Codable, Comparable {
    /// A consent became granted: an opt-in (API, widget, import), or a double opt-in confirmed.
    case consentGranted = "consent.granted"
    case consentWithdrawn = "consent.withdrawn"
    /// An opt-in older than the person's withdrawal or stop: recorded, and never in force.
    case consentSuperseded = "consent.superseded"
    case subjectErased = "subject.erased"
    case objectionRecorded = "objection.recorded"
    /// A data-subject request's legal deadline is near (announced once, by the retention job, 7 days before).
    case requestDueSoon = "request.due_soon"
    case templateStatusChanged = "template.status_changed"
    /// Sent only by `POST /v1/webhooks/endpoints/{id}/test`, to that endpoint; nobody subscribes to it.
    case test = "webhook.test"

    /// The types an endpoint may subscribe to.
    public static let subscribable: [WebhookEventType] = allCases.filter { $0 != .test }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
