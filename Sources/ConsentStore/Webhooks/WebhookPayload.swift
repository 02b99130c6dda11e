import ConsentCore
import Foundation

/// The body of a delivery, the Standard Webhooks shape: `{"type", "timestamp", "data"}`. `data` is the stored
/// event's JSON as the database wrote it (ids, purposes, channel, times and the subject reference), spliced in
/// unchanged: the body is built once per attempt and signed as built.
enum WebhookPayload {
    static func body(type: String, occurredAt: Date, data: String) -> [UInt8] {
        var body = Array("{\"type\":".utf8)
        body += JSONString.quoted(type)
        body += Array(",\"timestamp\":".utf8)
        body += JSONString.quoted(RFC3339.format(occurredAt))
        body += Array(",\"data\":".utf8)
        body += Array(data.utf8)
        body.append(UInt8(ascii: "}"))
        return body
    }
}

/// A JSON string literal for text the service chose (an event type, a time): escaped all the same.
enum JSONString {
    static func quoted(_ text: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): out += Array("\\\\".utf8)
            case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }
}
