/// How a person said they want no more messages. Kept with the withdrawal, so that a reviewer can tell a typed
/// "STOP" from a sentence the rules read as one, and both from a tap.
public enum OptOutKind: String, Sendable, Codable, CaseIterable {
    /// The whole message is a stop keyword ("STOP", "cancellami", "darme de baja").
    case keyword
    /// The message contains an opt-out phrase ("please stop sending me these", "keine Nachrichten mehr").
    case phrase
    /// The person tapped the template's stop-promotions quick-reply button.
    case button
    /// The platform told us: the person stopped marketing messages in WhatsApp itself.
    case platform
}
