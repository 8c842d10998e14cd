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

/// Makes a file durable in steps while it is still being written: each time `every` more
/// bytes have been written, a thread of its own fsyncs the file, so the device writes while
/// the copy goes on and the final fsync has only the tail left, then lets the kernel drop
/// the flushed pages (a backup's output need not stay cached). The step is `syncWritten`:
/// nothing for an upload or an encrypted stream, which become durable only at their end. The
/// first failed fsync is kept: after it the kernel may report the next one as a success with
/// the data lost.
final class Flusher: @unchecked Sendable {
    private let cond = Condition()
    private let file: any StorageFile
    private let every: Int64
    private var written: Int64 = 0
    private var stopped = false
    private var error: Error?
    private let done = DispatchGroup()

    init(file: any StorageFile, every: Int64) {
        self.file = file
        self.every = every
        done.enter()
        Threads.start(name: "jetbackup-flush", stackSize: 1 << 20) { [self] in run() }
    }

    func wrote(_ n: Int) {
        cond.withLock {
            written += Int64(n)
            cond.signal()
        }
    }

    private func run() {
        defer { done.leave() }
        var flushed: Int64 = 0
        while true {
            cond.lock()
            while !stopped && written - flushed < every { cond.wait() }
            let upTo = written
            let stop = stopped
            cond.unlock()
            if stop { return }
            do {
                try file.syncWritten()
            } catch {
                cond.withLock { self.error = error }
                return
            }
            file.startWriteback(offset: flushed, length: Int(upTo - flushed))
            flushed = upTo
        }
    }

    /// The fsync that failed, if one did (the thread has ended then).
    var failure: Error? { cond.withLock { error } }

    /// Ends the thread (after a flush in progress); returns the first fsync error. Idempotent.
    func stop() -> Error? {
        cond.withLock {
            stopped = true
            cond.signal()
        }
        done.wait()
        return cond.withLock { error }
    }
}
