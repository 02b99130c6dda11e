import Foundation

/// RFC 3339 times in UTC: written with milliseconds, read with or without fractions and with any offset.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        date.formatted(withFractions)
    }

    public static func parse(_ text: String) -> Date? {
        (try? withFractions.parse(text)) ?? (try? withoutFractions.parse(text))
    }

    static let withFractions = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt)
    static let withoutFractions = Date.ISO8601FormatStyle(timeZone: .gmt)
}
