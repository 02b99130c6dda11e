import Foundation

/// RFC 3339 times in UTC: written with milliseconds, read with or without fractions and with any offset.
public enum RFC3339 {
    /// Truncates to the millisecond. The formatter truncates the binary value it is given, and a time such as
    /// x.999 s is often stored just below it; so the millisecond is found with half a microsecond of slack and the
    /// formatter is handed its middle.
    public static func format(_ date: Date) -> String {
        let milliseconds = (date.timeIntervalSince1970 * 1000 + 0.0005).rounded(.down)
        return Date(timeIntervalSince1970: (milliseconds + 0.5) / 1000).formatted(withFractions)
    }

    public static func parse(_ text: String) -> Date? {
        // The form that fits is tried first: a failed parse costs more than a successful one (an import reads a
        // million of these).
        if text.utf8.contains(UInt8(ascii: ".")) {
            return (try? withFractions.parse(text)) ?? (try? withoutFractions.parse(text))
        }
        return (try? withoutFractions.parse(text)) ?? (try? withFractions.parse(text))
    }

    static let withFractions = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
    static let withoutFractions = Date.ISO8601FormatStyle(timeZone: .gmt)
}
