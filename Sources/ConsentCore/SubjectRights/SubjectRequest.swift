import Foundation

/// The data-subject requests the DPO tracks (OpenDSR's request types).
public enum SubjectRequestType: String, Sendable, CaseIterable, Codable {
    /// Art. 15: a copy of everything held.
    case access
    /// Art. 20: the same bundle, machine-readable, to take elsewhere.
    case portability
    /// Art. 17: erasure.
    case erasure
    /// Art. 21(2)-(3): an objection to direct marketing, completed by applying it.
    case objection
}

public enum SubjectRequestStatus: String, Sendable, CaseIterable, Codable {
    case pending
    case completed
    case cancelled
}

/// Art. 12(3): a request is answered "within one month of receipt". A calendar month, counted in UTC: the same day
/// of the next month, or that month's last day when it is shorter (31 January → 28 or 29 February), at the same
/// time of day.
public enum ResponseDueDate {
    public static func dueAt(receivedAt: Date) -> Date {
        // Whole milliseconds, as times are stored and written: exact integer arithmetic from here on.
        let milliseconds = Int64((receivedAt.timeIntervalSince1970 * 1000).rounded())
        let days = milliseconds >= 0 ? milliseconds / msPerDay : (milliseconds - msPerDay + 1) / msPerDay
        let timeOfDay = milliseconds - days * msPerDay
        let (year, month, day) = CivilDate.from(daysSinceEpoch: days)
        let (nextYear, nextMonth) = month == 12 ? (year + 1, Int64(1)) : (year, month + 1)
        let dueDay = min(day, CivilDate.daysIn(month: nextMonth, year: nextYear))
        let dueDays = CivilDate.daysSinceEpoch(year: nextYear, month: nextMonth, day: dueDay)
        return Date(timeIntervalSince1970: Double(dueDays * msPerDay + timeOfDay) / 1000)
    }

    static let msPerDay: Int64 = 86_400_000

    /// A pending request past its due time; a closed one is never overdue.
    public static func isOverdue(status: SubjectRequestStatus, dueAt: Date, now: Date) -> Bool {
        status == .pending && now > dueAt
    }
}

/// Proleptic Gregorian dates from day counts (Howard Hinnant's civil_from_days and days_from_civil), so the due
/// date does not depend on a calendar object's time zone or locale.
enum CivilDate {
    static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func from(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
