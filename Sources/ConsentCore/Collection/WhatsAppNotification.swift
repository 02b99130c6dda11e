import Foundation

/// The WhatsApp Cloud API webhook body as Meta sends it: `{"object": "whatsapp_business_account", "entry": [{"id",
/// "changes": [{"field", "value": {"messaging_product", "metadata", "contacts"?, "messages"?, "statuses"?,
/// "user_preferences"?}}]}]}`. Only what consent needs is decoded; every other field is ignored, so new fields
/// that Meta adds do not break delivery.
public struct WhatsAppNotification: Decodable, Sendable {
    public let object: String
    public let entry: [Entry]

    public struct Entry: Decodable, Sendable {
        public let id: String?
        /// Unix seconds: when the platform raised the change (template webhooks carry it).
        public let time: Int64?
        public let changes: [Change]
    }

    public struct Change: Decodable, Sendable {
        public let field: String
        public let value: Value
    }

    public struct Value: Decodable, Sendable {
        /// The business number the messages were sent to.
        public let metadata: Metadata?
        public let messages: [Message]?
        public let statuses: [Status]?
        public let userPreferences: [UserPreference]?
        /// The template fields (`message_template_status_update`, `template_category_update`,
        /// `message_template_quality_update`): templates are matched by name and language.
        public let event: String?
        public let messageTemplateName: String?
        public let messageTemplateLanguage: String?
        public let reason: String?
        public let previousCategory: String?
        public let newCategory: String?
        public let newQualityScore: String?

        enum CodingKeys: String, CodingKey {
            case metadata, messages, statuses, event, reason
            case userPreferences = "user_preferences"
            case messageTemplateName = "message_template_name"
            case messageTemplateLanguage = "message_template_language"
            case previousCategory = "previous_category"
            case newCategory = "new_category"
            case newQualityScore = "new_quality_score"
        }
    }

    public struct Metadata: Decodable, Sendable {
        public let phoneNumberId: String?
        enum CodingKeys: String, CodingKey { case phoneNumberId = "phone_number_id" }
    }

    public struct Message: Decodable, Sendable {
        public let from: String
        public let id: String
        /// Unix seconds, as a string.
        public let timestamp: String
        public let type: String
        public let text: Text?
        public let button: Button?
        public let interactive: Interactive?
        /// Present when the person wrote from a click-to-WhatsApp ad or a Page button: the free entry point.
        public let referral: Referral?

        /// Only its presence matters to consent and pricing; what the ad was is not kept.
        public struct Referral: Decodable, Sendable {
            public let sourceType: String?
            enum CodingKeys: String, CodingKey { case sourceType = "source_type" }
        }

        public struct Text: Decodable, Sendable { public let body: String }
        /// A quick-reply button of a template: its label and the payload the business gave it.
        public struct Button: Decodable, Sendable {
            public let text: String?
            public let payload: String?
        }
        public struct Interactive: Decodable, Sendable {
            public let buttonReply: Reply?
            public let listReply: Reply?
            public struct Reply: Decodable, Sendable {
                public let id: String?
                public let title: String?
            }
            enum CodingKeys: String, CodingKey {
                case buttonReply = "button_reply"
                case listReply = "list_reply"
            }
        }
    }

    /// Delivery receipts for messages the business sent: not consent, counted and otherwise ignored.
    public struct Status: Decodable, Sendable {
        public let id: String?
        public let status: String?
    }

    public struct UserPreference: Decodable, Sendable {
        public let waId: String
        public let category: String
        public let value: String
        /// Unix seconds; Meta sends a number here.
        public let timestamp: Int64?

        enum CodingKeys: String, CodingKey {
            case waId = "wa_id"
            case category, value, timestamp
        }
    }
}

/// What a notification asks of the consent ledger, in the order Meta listed it.
public enum WhatsAppEvent: Sendable, Equatable {
    /// A message from the person: opens the window (and, from an ad, the free entry point); a stop keyword
    /// withdraws, a confirmation keyword confirms. `button` is the quick reply tapped, if it was one;
    /// `businessNumberId` the business number it was sent to (the payload's `metadata.phone_number_id`).
    case inbound(
        messageId: String, from: String, at: Date, text: String?, fromAd: Bool = false, button: TappedButton? = nil,
        businessNumberId: String? = nil)
    /// The person stopped marketing messages in WhatsApp itself.
    case marketingStopped(waId: String, at: Date?)
    /// The person resumed marketing messages: not consent to anything (consent is given on a notice), only noted.
    case marketingResumed(waId: String, at: Date?)
    /// The platform reviewed, paused, disabled or reinstated a template (`event` as it sent it), at `at`.
    case templateStatus(
        name: String, language: String, status: TemplateStatus, event: String, reason: String?, at: Date?)
    /// The platform re-categorised a template; it is priced and restricted as the new category from now on.
    case templateCategory(name: String, language: String, category: PurposeCategory, at: Date?)
    case templateQuality(name: String, language: String, score: String)

    public enum Invalid: Error, Equatable {
        case notWhatsApp(String)
        case timestamp(messageId: String)
    }

    /// The events of a notification; `statuses` carry none. The text of a message is its body, or the label of the
    /// button or list item the person tapped: "Stop promotions" buttons are how templates offer opting out.
    public static func events(in notification: WhatsAppNotification) throws(Invalid) -> [WhatsAppEvent] {
        guard notification.object == "whatsapp_business_account" else { throw .notWhatsApp(notification.object) }
        var events: [WhatsAppEvent] = []
        for entry in notification.entry {
            for change in entry.changes {
                for message in change.value.messages ?? [] {
                    guard let seconds = Int64(message.timestamp), seconds >= 0 else {
                        throw .timestamp(messageId: message.id)
                    }
                    let text =
                        message.text?.body ?? message.button?.text ?? message.interactive?.buttonReply?.title
                        ?? message.interactive?.listReply?.title
                    var button: TappedButton?
                    if let tapped = message.button {
                        button = TappedButton(title: tapped.text, payload: tapped.payload)
                    } else if let reply = message.interactive?.buttonReply {
                        button = TappedButton(title: reply.title, payload: reply.id)
                    }
                    events.append(
                        .inbound(
                            messageId: message.id, from: message.from,
                            at: Date(timeIntervalSince1970: TimeInterval(seconds)), text: text,
                            fromAd: message.referral != nil, button: button,
                            businessNumberId: change.value.metadata?.phoneNumberId))
                }
                let at = entry.time.map { Date(timeIntervalSince1970: TimeInterval($0)) }
                if let event = templateEvent(change, at: at) { events.append(event) }
                for preference in change.value.userPreferences ?? [] where preference.category == "marketing_messages" {
                    let at = preference.timestamp.map { Date(timeIntervalSince1970: TimeInterval($0)) }
                    switch preference.value {
                    case "stop": events.append(.marketingStopped(waId: preference.waId, at: at))
                    case "resume": events.append(.marketingResumed(waId: preference.waId, at: at))
                    default: continue
                    }
                }
            }
        }
        return events
    }

    /// The platform's template statuses as the ledger keeps them. `FLAGGED` (quality falling, still sendable) and
    /// `IN_APPEAL` change nothing a check answers; `REINSTATED` is approved again; deletion disables.
    static func templateStatus(_ event: String) -> TemplateStatus? {
        switch event.uppercased() {
        case "APPROVED", "REINSTATED": .approved
        case "REJECTED": .rejected
        case "PAUSED": .paused
        case "DISABLED", "PENDING_DELETION", "DELETED", "ARCHIVED", "LIMIT_EXCEEDED": .disabled
        case "PENDING": .pending
        default: nil
        }
    }

    /// A template change, when the field names one with a name and language; an impending category change (it
    /// carries `correct_category` and no `previous_category`) is not one yet: the platform still prices the
    /// template by its old category until the change is made, and then sends the completed notification.
    static func templateEvent(_ change: WhatsAppNotification.Change, at: Date?) -> WhatsAppEvent? {
        let value = change.value
        guard let name = value.messageTemplateName, let language = value.messageTemplateLanguage else { return nil }
        switch change.field {
        case "message_template_status_update":
            guard let event = value.event, let status = templateStatus(event) else { return nil }
            let reason = value.reason.flatMap { $0.uppercased() == "NONE" || $0.isEmpty ? nil : $0 }
            return .templateStatus(
                name: name, language: language, status: status, event: event, reason: reason, at: at)
        case "template_category_update":
            guard value.previousCategory != nil,
                let category = value.newCategory.flatMap({
                    PurposeCategory(rawValue: $0.lowercased())
                })
            else { return nil }
            return .templateCategory(name: name, language: language, category: category, at: at)
        case "message_template_quality_update":
            guard let score = value.newQualityScore else { return nil }
            return .templateQuality(name: name, language: language, score: score)
        default:
            return nil
        }
    }

    /// A WhatsApp id is the number in international form without its `+`.
    public static func phoneNumber(waId: String) -> String { waId.hasPrefix("+") ? waId : "+" + waId }
}

/// A quick-reply button the person tapped: its label as shown, and the payload the business attached to it.
public struct TappedButton: Sendable, Equatable {
    public let title: String?
    public let payload: String?

    public init(title: String?, payload: String?) {
        self.title = title
        self.payload = payload
    }

    /// A confirmation button that names the one double opt-in it asks about carries `confirm:<consent id>`:
    /// tapping it confirms that consent only.
    public var confirmedConsentId: UUID? {
        guard let payload, payload.hasPrefix("confirm:") else { return nil }
        return UUID(uuidString: String(payload.dropFirst("confirm:".count)))
    }
}
