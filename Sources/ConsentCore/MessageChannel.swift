/// Where a message goes. The raw values are the contract's channel names.
public enum MessageChannel: String, CaseIterable, Sendable, Codable, Hashable {
    case whatsapp
    case sms
    case email

    /// Phone channels identify people by E.164 number; e-mail by address.
    public var usesPhoneNumbers: Bool { self != .email }
}
