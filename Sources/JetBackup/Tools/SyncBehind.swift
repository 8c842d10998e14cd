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

/// fsyncs files in the background as soon as they are handed over (each written whole),
/// `lanes` at a time, while the caller writes the next ones: the device writes during the
/// copy instead of all of it at the end, and fsyncs that overlap are committed together by
/// the file system. Every file handed over is closed by the lane that takes it. `finish()`
/// waits for all and throws the first fsync error (after a failed fsync a later one may
/// report success with the data lost, so none is retried or swallowed); `abandon()` closes
/// what is still queued without syncing it. The caller must call one of them (a `defer`
/// with `abandon()`: it does nothing after `finish()`).
final class SyncBehind: @unchecked Sendable {
    private let cond = Condition()
    private var queue: [any StorageFile] = []
    private var closing = false
    private var abandoned = false
    private var error: Error?
    private let done = DispatchGroup()

    init(lanes: Int) {
        for _ in 0..<max(1, lanes) {
            done.enter()
            Threads.start(name: "jetbackup-sync", stackSize: 1 << 20) { [self] in
                defer { done.leave() }
                while let f = next() {
                    let failed = cond.withLock { error != nil || abandoned }
                    var e: Error?
                    if !failed {
                        do {
                            try f.sync()
                            f.startWriteback(offset: 0, length: 0) // clean now: let the kernel drop it
                        } catch let x { e = x }
                    }
                    f.close()
                    cond.withLock {
                        if let e, error == nil { error = e }
                    }
                }
            }
        }
    }

    /// The next file to sync, or nil once the caller is done and the queue is empty.
    private func next() -> (any StorageFile)? {
        cond.lock()
        defer { cond.unlock() }
        while queue.isEmpty && !closing { cond.wait() }
        guard !queue.isEmpty else { return nil }
        return queue.removeFirst()
    }

    func add(_ file: any StorageFile) {
        cond.withLock {
            if closing {
                file.close()
                return
            }
            queue.append(file)
            cond.broadcast()
        }
    }

    /// The first fsync error so far (the caller may stop early on it).
    var failure: Error? { cond.withLock { error } }

    /// Waits until every file handed over is fsynced and closed; throws the first error.
    func finish() throws {
        end(abandon: false)
        if let e = cond.withLock({ error }) { throw e }
    }

    /// Closes what is queued without syncing it and waits for the lanes. Idempotent.
    func abandon() {
        end(abandon: true)
    }

    private func end(abandon: Bool) {
        cond.withLock {
            if abandon && !closing { abandoned = true }
            closing = true
            cond.broadcast()
        }
        done.wait()
    }
}
