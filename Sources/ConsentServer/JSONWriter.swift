import ConsentCore
import Foundation
import NIOCore

/// JSON written by hand for the hottest answers (a check, a batch of checks), in the shared encoder's form: sorted
/// keys, slashes unescaped, RFC 3339 times. The generic JSONEncoder spent a fifth of a 10,000-subject batch's time,
/// and a tenth of a single cached check's, on these flat shapes. Tests compare each with the shared encoder.
enum JSONWriter {
    /// A time as the shared encoder writes it: an RFC 3339 string, UTC, milliseconds.
    static func writeTime(_ date: Date, to json: inout ByteBuffer) {
        writeString(RFC3339.format(date), to: &json)
    }

    /// A JSON string: quotes, backslashes and control characters escaped, everything else as UTF-8.
    /// A string, or `null` for nil (a field the contract keeps present when it has no value).
    static func writeStringOrNull(_ value: String?, to buffer: inout ByteBuffer) {
        guard let value else {
            buffer.writeStaticString("null")
            return
        }
        writeString(value, to: &buffer)
    }

    static func writeString(_ text: String, to json: inout ByteBuffer) {
        json.writeInteger(UInt8(ascii: "\""))
        defer { json.writeInteger(UInt8(ascii: "\"")) }
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            json.writeString(text)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): json.writeStaticString(#"\""#)
            case UInt8(ascii: "\\"): json.writeStaticString(#"\\"#)
            case 0x0A: json.writeStaticString(#"\n"#)
            case 0x0D: json.writeStaticString(#"\r"#)
            case 0x09: json.writeStaticString(#"\t"#)
            case 0x08: json.writeStaticString(#"\b"#)
            case 0x0C: json.writeStaticString(#"\f"#)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                json.writeStaticString(#"\u00"#)
                json.writeInteger(hex[Int(byte >> 4)])
                json.writeInteger(hex[Int(byte & 0x0F)])
            default: json.writeInteger(byte)
            }
        }
    }
}
