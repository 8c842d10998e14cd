#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A token bucket that holds a stream of bytes to `bytesPerSecond` (`--max-rate`): each
/// chunk takes its size in tokens; when the bucket is empty the caller sleeps until it has
/// refilled. The bucket holds at most a quarter second's worth, so a pause never turns
/// into a burst above the rate over any window of a second or more.
final class Throttle: @unchecked Sendable {
    let rate: Double
    let capacity: Double
    private var tokens: Double
    private var last: Double
    private let now: () -> Double
    private let sleep: (Double) -> Void

    init(bytesPerSecond: Int64, now: @escaping () -> Double = Clock.monotonicSeconds,
         sleep: @escaping (Double) -> Void = { usleep(UInt32(min($0, 1) * 1_000_000)) }) {
        rate = Double(max(1, bytesPerSecond))
        capacity = rate / 4
        tokens = 0
        self.now = now
        self.sleep = sleep
        last = now()
    }

    /// Takes `n` bytes' worth, sleeping (in steps of at most a second, checking
    /// `isCancelled` between them) until the bucket allows them.
    func consume(_ n: Int64, isCancelled: () -> Bool = { false }) {
        refill()
        tokens -= Double(n)
        // Whole bytes: a deficit below one byte is rounding, and waiting it out would spin.
        while tokens <= -1 && !isCancelled() {
            sleep(min(1, max(0.001, -tokens / rate)))
            refill()
        }
    }

    private func refill() {
        let t = now()
        tokens = min(capacity, tokens + (t - last) * rate)
        last = t
    }
}
