import Foundation

/// Days of the week and a time of day in a time zone (`08:00`–`18:00`, Monday to Friday, Europe/Berlin).
/// A window whose end is before its start runs over midnight.
package struct TimeWindow: Sendable, Equatable {
    /// 1 = Sunday … 7 = Saturday (Gregorian weekdays).
    let days: Set<Int>
    let from: Int
    let to: Int
    let zone: TimeZone

    static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    package struct Invalid: Error, Equatable, CustomStringConvertible {
        package var description: String
    }

    package init(days: [String], from: String, to: String, zone: String) throws(Invalid) {
        var numbers = Set<Int>()
        for day in days {
            guard let number = Self.dayNames[String(day.lowercased().prefix(3))], day.count >= 3 else {
                throw Invalid(description: "'\(day)' is not a day (mon, tue, wed, thu, fri, sat, sun)")
            }
            numbers.insert(number)
        }
        guard let timeZone = TimeZone(identifier: zone) else { throw Invalid(description: "'\(zone)' is not a time zone (like Europe/Berlin)") }
        self.days = numbers.isEmpty ? Set(1...7) : numbers
        self.from = try Self.minutes(from)
        self.to = try Self.minutes(to)
        guard self.from != self.to else { throw Invalid(description: "from and to are the same time: the window would be empty") }
        self.zone = timeZone
    }

    static func minutes(_ text: String) throws(Invalid) -> Int {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let hours = Int(parts[0]), let minutes = Int(parts[1]), (0...24).contains(hours), (0...59).contains(minutes),
            hours * 60 + minutes <= 1440
        else { throw Invalid(description: "'\(text)' is not a time of day (HH:MM)") }
        return hours * 60 + minutes
    }

    package func contains(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let now = hour * 60 + minute
        if from <= to { return days.contains(weekday) && now >= from && now < to }
        // Over midnight: the early hours belong to the previous day's window.
        if now >= from { return days.contains(weekday) }
        return now < to && days.contains(weekday == 1 ? 7 : weekday - 1)
    }
}
