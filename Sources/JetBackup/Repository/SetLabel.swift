#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// The name of a set in a repository: its full backup's start in UTC to the second,
/// `20261125T033600Z-full`. Labels sort as text in time order, so the newest set is the
/// greatest label; any other name in the repository is not a set.
public struct SetLabel: Comparable, Hashable, Sendable, CustomStringConvertible {
    public static let suffix = "-full"
    /// Seconds since the epoch.
    public let seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public init(microseconds: UInt64) { seconds = Int64(microseconds / 1_000_000) }

    /// Parses a label; nil for anything that is not exactly one (`..`, a path, other digits).
    public init?(_ text: String) {
        let u = Array(text.utf8)
        guard u.count == 16 + Self.suffix.utf8.count, String(decoding: u[16...], as: UTF8.self) == Self.suffix,
              u[8] == UInt8(ascii: "T"), u[15] == UInt8(ascii: "Z") else { return nil }
        func num(_ r: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for c in u[r] {
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int32(c - 0x30)
            }
            return v
        }
        guard let y = num(0..<4), let mo = num(4..<6), let d = num(6..<8), let h = num(9..<11), let mi = num(11..<13),
              let s = num(13..<15), (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 60, y >= 1970 else { return nil }
        var t = tm()
        t.tm_year = y - 1900; t.tm_mon = mo - 1; t.tm_mday = d; t.tm_hour = h; t.tm_min = mi; t.tm_sec = s
        let secs = Int64(timegm(&t))
        self.seconds = secs
        // 31 February and the like normalize to another day: not a label we would write.
        guard description == text else { return nil }
    }

    public var microseconds: UInt64 { UInt64(max(0, seconds)) * 1_000_000 }

    public var description: String {
        var t = time_t(seconds)
        var m = tm()
        gmtime_r(&t, &m)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        return "\(pad(m.tm_year + 1900, 4))\(pad(m.tm_mon + 1, 2))\(pad(m.tm_mday, 2))T"
            + "\(pad(m.tm_hour, 2))\(pad(m.tm_min, 2))\(pad(m.tm_sec, 2))Z\(Self.suffix)"
    }

    public static func < (a: SetLabel, b: SetLabel) -> Bool { a.seconds < b.seconds }
}

/// "Now" for the repository's decisions (labels, `--full-every`, retention, status age,
/// the times written into manifests and metrics). The system clock, or a fixed time for
/// tests that simulate weeks of cron runs in seconds.
public struct WallClock: Sendable {
    public let now: @Sendable () -> UInt64
    public let isSystem: Bool

    public static let system = WallClock(now: { Clock.microsecondsSinceEpoch() }, isSystem: true)

    public static func fixed(microseconds: UInt64) -> WallClock { WallClock(now: { microseconds }, isSystem: false) }

    init(now: @escaping @Sendable () -> UInt64, isSystem: Bool) {
        self.now = now
        self.isSystem = isSystem
    }

    /// Parses RFC 3339 in UTC (`2026-11-25T03:36:00Z`, fractions allowed): microseconds.
    public static func parseRFC3339(_ s: String) -> UInt64? {
        let u = Array(s.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z"), u[4] == 0x2D, u[7] == 0x2D, u[10] == UInt8(ascii: "T"),
              u[13] == 0x3A, u[16] == 0x3A else { return nil }
        let compact = String(decoding: u[0..<4] + u[5..<7] + u[8..<10], as: UTF8.self) + "T"
            + String(decoding: u[11..<13] + u[14..<16] + u[17..<19], as: UTF8.self) + "Z" + SetLabel.suffix
        guard let label = SetLabel(compact) else { return nil }
        var frac: UInt64 = 0
        if u.count > 20 {
            guard u[19] == 0x2E else { return nil }
            let digits = u[20..<(u.count - 1)]
            guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            guard let f = UInt64(String(decoding: digits, as: UTF8.self)) else { return nil }
            frac = f * UInt64([1, 100_000, 10_000, 1000, 100, 10, 1][digits.count])
        } else if u.count != 20 {
            return nil
        }
        return label.microseconds + frac
    }
}
