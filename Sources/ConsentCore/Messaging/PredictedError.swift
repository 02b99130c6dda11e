/// The refusal the platform would give for a send the check refuses for a platform reason, so that a sender can
/// tell "the law says no" (no predicted error) from "the platform would bounce it". Codes from the WhatsApp Cloud
/// API error reference; the template ones are the service's own names for a send the platform does not accept.
public enum PredictedError: String, Sendable, Equatable, CaseIterable {
    /// A free-form message outside the customer-care window (re-engagement message).
    case outsideWindow = "131047"
    /// The person stopped marketing messages from this business in WhatsApp.
    case marketingStopped = "131050"
    case templatePaused = "template_paused"
    case templateNotApproved = "template_not_approved"

    public var code: String { rawValue }

    public var message: String {
        switch self {
        case .outsideWindow: "Re-engagement message: more than 24 hours since the person last wrote"
        case .marketingStopped: "The person has stopped marketing messages from this business"
        case .templatePaused: "The template is paused by the platform for low quality"
        case .templateNotApproved: "The template is not approved by the platform"
        }
    }
}
