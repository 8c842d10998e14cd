#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import JetStore

/// Items `0..<count` prepared by `lanes` worker threads and taken by the caller in order:
/// each worker takes the next item as soon as it is free (no group waits for its slowest
/// member), and at most `window` items are ahead of the one the caller takes, so what is
/// held in memory stays bounded whatever `count` is. A worker lane number is passed to
/// `prepare` (a lane owns per-lane buffers). The caller must call `stop()` before it leaves
/// (a `defer`): workers then take nothing more, and `stop()` returns once they all ended.
final class OrderedWorkers<T>: @unchecked Sendable {
    private let cond = Condition()
    private let count: Int
    private let window: Int
    private var next = 0
    private var taken = 0
    private var stopped = false
    private var ready: [Int: Result<T, Error>] = [:]
    private let done = DispatchGroup()


    init(count: Int, lanes: Int, window: Int, prepare: @escaping @Sendable (_ item: Int, _ lane: Int) throws -> T) {
        self.count = count
        self.window = max(1, window)
        // Threads of their own: a dispatch queue runs only as many blocks at once as there
        // are cores, and these workers spend much of their time waiting for their writes.
        for lane in 0..<max(1, min(lanes, count)) {
            done.enter()
            Threads.start(name: "jetbackup-work", stackSize: 1 << 20) { [self] in
                defer { done.leave() }
                while let k = claim() {
                    let r = Result { try prepare(k, lane) }
                    cond.withLock {
                        ready[k] = r
                        cond.broadcast()
                    }
                }
            }
        }
    }

    private func claim() -> Int? {
        cond.lock()
        defer { cond.unlock() }
        while !stopped && next < count && next >= taken + window { cond.wait() }
        guard !stopped && next < count else { return nil }
        next += 1
        return next - 1
    }

    /// Item `k` (the next one in order: 0, 1, 2…) once a worker prepared it; rethrows its error.
    func take(_ k: Int) throws -> T {
        cond.lock()
        while ready[k] == nil { cond.wait() }
        let r = ready.removeValue(forKey: k)!
        taken = k + 1
        cond.broadcast()
        cond.unlock()
        return try r.get()
    }

    /// No more items are started; returns when every worker has ended. Idempotent.
    func stop() {
        cond.withLock {
            stopped = true
            cond.broadcast()
        }
        done.wait()
    }
}
