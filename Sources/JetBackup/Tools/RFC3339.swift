/// RFC 3339 date-times as a user types them: `2026-11-25T03:36:00Z`,
/// `2026-11-25T04:36:00.25+01:00`, `2026-11-24t22:36:00.123456789-05:00`.
public enum RFC3339 {
    /// Microseconds since the epoch, or nil when `s` is not an RFC 3339 date-time at or after
    /// the epoch. The offset is `Z` (`z`) or `+HH:MM`/`-HH:MM`; the fraction may have any number
    /// of digits, and digits past the microsecond are dropped: times compared with it (commit
    /// times) are whole microseconds, so "at or before" means the same. No leap second (60).
    public static func microseconds(_ s: String) -> UInt64? {
        let u = Array(s.utf8)
        func number(_ at: Int, _ count: Int) -> Int? {
            guard at + count <= u.count else { return nil }
            var v = 0
            for c in u[at..<(at + count)] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        func byte(_ at: Int, _ options: String) -> Bool { at < u.count && options.utf8.contains(u[at]) }
        guard let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"), let day = number(8, 2),
              byte(10, "Tt"), let hour = number(11, 2), byte(13, ":"), let minute = number(14, 2), byte(16, ":"),
              let second = number(17, 2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month, year), hour < 24, minute < 60, second < 60 else { return nil }
        var i = 19
        var micros = 0
        if byte(i, ".") {
            i += 1
            let start = i
            while i < u.count, u[i] >= 0x30, u[i] <= 0x39 {
                if i - start < 6 { micros = micros * 10 + Int(u[i] - 0x30) }
                i += 1
            }
            guard i > start else { return nil }
            for _ in min(6, i - start)..<6 { micros *= 10 }
        }
        var offset = 0
        if byte(i, "Zz") {
            i += 1
        } else if byte(i, "+-") {
            guard let oh = number(i + 1, 2), byte(i + 3, ":"), let om = number(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 60 + om) * 60 * (u[i] == UInt8(ascii: "-") ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == u.count else { return nil }
        let seconds = daysFromEpoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        guard seconds >= 0 else { return nil }
        return UInt64(seconds) * 1_000_000 + UInt64(micros)
    }

    static func daysIn(_ month: Int, _ year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to the date in the proleptic Gregorian calendar (Howard Hinnant's
    /// `days_from_civil`).
    static func daysFromEpoch(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
