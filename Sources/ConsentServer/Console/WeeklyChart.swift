import ConsentStore
import Foundation

/// The overview's chart: opt-ins and withdrawals per week as grouped bars, laid out here so the template only
/// places rectangles. Pure: the same series always draws the same picture.
struct WeeklyChart: Sendable {
    struct Bar {
        let x: Int
        let y: Int
        let width: Int
        let height: Int
        let kind: String
        let title: String
    }

    struct Label {
        let x: Int
        let text: String
    }

    struct Tick {
        let y: Int
        let value: Int
    }

    static let width = 720
    static let height = 240
    static let plotTop = 16
    static let plotBottom = 200

    let bars: [Bar]
    let labels: [Label]
    let maximum: Int
    /// Gridline values, from 0 to the rounded maximum.
    let ticks: [Tick]

    init(_ series: [WeeklyActivity]) {
        let peak = series.map { max($0.granted, $0.withdrawn) }.max() ?? 0
        let maximum = Self.niceCeiling(peak)
        let slot = series.isEmpty ? Self.width : (Self.width - 48) / series.count
        let barWidth = max(4, slot * 3 / 8)
        let plot = Self.plotBottom - Self.plotTop
        func height(_ value: Int) -> Int {
            maximum == 0 ? 0 : Int((Double(value) / Double(maximum) * Double(plot)).rounded())
        }
        var bars: [Bar] = []
        var labels: [Label] = []
        for (index, week) in series.enumerated() {
            let left = 48 + index * slot + (slot - 2 * barWidth) / 2
            let day = Self.day(week.weekStart)
            let granted = height(week.granted)
            let withdrawn = height(week.withdrawn)
            bars.append(
                Bar(
                    x: left, y: Self.plotBottom - granted, width: barWidth, height: granted, kind: "granted",
                    title: "Week of \(day): \(week.granted) opt-ins"))
            bars.append(
                Bar(
                    x: left + barWidth, y: Self.plotBottom - withdrawn, width: barWidth, height: withdrawn,
                    kind: "withdrawn",
                    title: "Week of \(day): \(week.withdrawn) withdrawals"))
            if index % 2 == 0 || series.count <= 6 {
                labels.append(Label(x: left + barWidth, text: String(day.dropFirst(5))))
            }
        }
        self.bars = bars
        self.labels = labels
        self.maximum = maximum
        self.ticks =
            maximum == 0
            ? [Tick(y: Self.plotBottom, value: 0)]
            : stride(from: 0, through: maximum, by: max(1, maximum / 4)).map {
                Tick(y: Self.plotBottom - height($0), value: $0)
            }
    }

    /// 1, 2 or 5 times a power of ten, at least `value`: gridlines at round numbers.
    static func niceCeiling(_ value: Int) -> Int {
        guard value > 0 else { return 0 }
        var magnitude = 1
        while magnitude * 10 <= value { magnitude *= 10 }
        for step in [1, 2, 5, 10] where step * magnitude >= value { return step * magnitude }
        return 10 * magnitude
    }

    static func day(_ date: Date) -> String { String(RFC3339Day.format(date)) }
}

/// `YYYY-MM-DD` in UTC.
enum RFC3339Day {
    static func format(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? .current
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }
}
