import ConsentCore
import Foundation

/// Turns the raw strings of a request into domain values, or into a 422 that names the field and says what a valid
/// value looks like.
enum Input {
    /// One of an enumeration's cases by its contract name; the error lists the names that are allowed.
    static func oneOf<Value: RawRepresentable & CaseIterable>(_ raw: String, field: String) throws(APIError) -> Value
    where Value.RawValue == String {
        guard let value = Value(rawValue: raw) else {
            throw .invalid(field, "'\(field)' must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    static func channel(_ raw: String) throws(APIError) -> MessageChannel { try oneOf(raw, field: "channel") }

    static func subject(_ raw: String, channel: MessageChannel, field: String = "subject") throws(APIError)
        -> SubjectIdentifier
    {
        do {
            return try SubjectIdentifier(raw, channel: channel)
        } catch {
            // The value is personal data: the message describes the problem, never repeats the input.
            throw .invalid(field, "'\(field)' is \(error.description)")
        }
    }

    static func purposes(_ raw: [String], field: String = "purposes") throws(APIError) -> [String] {
        guard !raw.isEmpty else { throw .invalid(field, "'\(field)' must name at least one purpose") }
        guard raw.count <= 64 else { throw .invalid(field, "'\(field)' may name at most 64 purposes") }
        for (index, key) in raw.enumerated() where !Purpose.isValidKey(key) {
            throw .invalid("\(field)[\(index)]", "'\(field)[\(index)]' is not a purpose key (a-z, 0-9, _)")
        }
        guard Set(raw).count == raw.count else { throw .invalid(field, "'\(field)' names a purpose twice") }
        return raw
    }

    static func purpose(_ raw: String, field: String = "purpose") throws(APIError) -> String {
        guard Purpose.isValidKey(raw) else { throw .invalid(field, "'\(field)' is not a purpose key (a-z, 0-9, _)") }
        return raw
    }

    static func uuid(_ raw: String, field: String) throws(APIError) -> UUID {
        guard let id = UUID(uuidString: raw) else { throw .invalid(field, "'\(field)' must be a UUID") }
        return id
    }

    /// Times from clients may lag but must not lie about the future beyond ordinary clock skew.
    static func pastTime(_ time: Date, field: String, now: Date = Date()) throws(APIError) -> Date {
        guard time <= now.addingTimeInterval(maxClockSkew) else {
            throw .invalid(field, "'\(field)' is in the future; send the time it happened, in UTC")
        }
        guard time >= Date(timeIntervalSince1970: 946_684_800) else {
            throw .invalid(field, "'\(field)' is before the year 2000")
        }
        return time
    }
    static let maxClockSkew: TimeInterval = 5 * 60

    static func messageType(_ raw: String?) throws(APIError) -> MessageType {
        guard let raw else { return .template }
        return try oneOf(raw, field: "messageType")
    }

    /// `entryPoint: "ad"`: a WhatsApp message that came from a click-to-WhatsApp ad or a Page button.
    static func entryPoint(_ raw: String?, channel: MessageChannel) throws(APIError) -> Bool {
        guard let raw else { return false }
        guard raw == "ad" else { throw .invalid("entryPoint", "'entryPoint' must be ad") }
        guard channel == .whatsapp else {
            throw .invalid("entryPoint", "'entryPoint' applies to WhatsApp only: other channels have no entry points")
        }
        return true
    }

    /// How far ahead a check may ask about: the window and pricing at a send a week away are still knowable.
    static let maxSendAhead: TimeInterval = 7 * 24 * 3600

    /// `sendAt`: an RFC 3339 time from now (less ordinary clock skew) to seven days ahead; absent, now.
    static func sendAt(_ raw: String?, now: Date) throws(APIError) -> Date {
        guard let raw else { return now }
        guard let time = RFC3339.parse(raw) else {
            throw .invalid("sendAt", "'sendAt' must be an RFC 3339 time, e.g. 2026-12-01T09:30:00Z")
        }
        guard time >= now.addingTimeInterval(-maxClockSkew), time <= now.addingTimeInterval(maxSendAhead) else {
            throw .invalid("sendAt", "'sendAt' must be between now and seven days ahead")
        }
        return max(time, now)
    }

    /// A free-form message outside WhatsApp has no meaning: refused before anything is looked up.
    static func messageType(_ raw: String?, channel: MessageChannel) throws(APIError) -> MessageType {
        let type = try messageType(raw)
        do {
            try SendQuestion.validate(channel: channel, messageType: type)
        } catch {
            throw APIError(
                .unprocessableContent, code: "session_not_applicable",
                message:
                    "a session (free-form) message exists on WhatsApp only; on \(channel.rawValue) send a template",
                field: "messageType")
        }
        return type
    }

    static func consistencyToken(_ raw: String?) throws(APIError) -> ConsistencyToken? {
        guard let raw else { return nil }
        guard let token = ConsistencyToken(parsing: raw) else {
            throw .invalid("consistencyToken", "'consistencyToken' must be a token returned by a write")
        }
        return token
    }

    /// A non-blank text of at most `maxLength` characters, counted as JSON Schema's `maxLength` counts them (Unicode
    /// code points), so that the OpenAPI document's limit is exactly the one enforced. PostgreSQL's text cannot hold
    /// U+0000, so it is refused here rather than failing the statement.
    static func text(_ raw: String, field: String, maxLength: Int) throws(APIError) -> String {
        guard !raw.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw .invalid(field, "'\(field)' must not be empty")
        }
        guard !raw.unicodeScalars.contains("\u{0}") else {
            throw .invalid(field, "'\(field)' must not contain the NUL character (U+0000)")
        }
        guard raw.unicodeScalars.count <= maxLength else {
            throw .invalid(field, "'\(field)' must be at most \(maxLength) characters")
        }
        return raw
    }
}
