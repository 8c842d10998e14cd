#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock and monotonic time without Foundation.
public enum Clock {
    public static func microsecondsSinceEpoch() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// Seconds on a monotonic clock, for durations.
    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-24T18:33:04.123Z` (1 to 6 digits cut, not rounded); with `fractionDigits: 6`,
    /// microseconds (`2026-11-24T18:33:04.123456Z`: a commit time exactly, as a point-in-time
    /// restore compares it).
    public static func rfc3339(microseconds: UInt64, fractionDigits: Int = 3) -> String {
        var t = time_t(microseconds / 1_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let fraction = pad(Int32(microseconds % 1_000_000), 6).prefix(min(6, max(1, fractionDigits)))
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T" +
            "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(fraction)Z"
    }

    public static func now() -> String { rfc3339(microseconds: microsecondsSinceEpoch()) }
}
