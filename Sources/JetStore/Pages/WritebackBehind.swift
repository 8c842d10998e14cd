#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Starts the write-back of the databases' dirty pages on a thread of its own, once per
/// doublewrite epoch, when the pages written in place are unlikely to be written again
/// before the epoch ends (`StorageFile.flushBehind`).
///
/// The engine writes pages in place without syncing and syncs the databases once per epoch
/// (`Instance.writePages`). Without this, the kernel's whole write-back of an epoch ran in
/// that sync on the committing thread: for a database much larger than the cache, tens of
/// thousands of scattered pages, a quarter of a load's time into 4 GiB (README, "Runs of
/// 2026-12-06, fourth session"). Started half-way through the epoch on another thread, it
/// runs on another core while the engine goes on, and the sync waits for what is left.
///
/// Not when pages repeat: a page written back early and written again later in the epoch
/// is written to the device twice, and starting write-back on every batch made loads into a
/// 256 MiB database 20 % slower. The epoch's repeat rate so far (writes of pages that
/// already have a copy in it) is the estimate; at most one page in `repeatLimit` may repeat.
/// Only a hint: durability comes from the epoch's sync alone, and an error of the
/// write-back started here is reported by that sync.
final class WritebackBehind: @unchecked Sendable {
    /// The share of the epoch's copies written before the write-back starts.
    static let startFill = 0.5
    /// At most one write in this many may be of a page already written in the epoch.
    static let repeatLimit = 20

    private let cond = Condition()
    private var pending: [ObjectIdentifier: any StorageFile] = [:]
    private var stopping = false
    private var running = false
    private let done = DispatchSemaphore(value: 0)

    // The epoch's counts (engine lock).
    private var epoch: UInt64?
    private var writes = 0
    private var repeats = 0
    private var started = false

    /// After a batch of `written` pages went in place, `repeated` of them pages the epoch
    /// had copied already, with the epoch `fill` (0–1) full: true when the write-back of the
    /// databases should start now (once an epoch).
    func shouldStart(epoch e: UInt64, written: Int, repeated: Int, fill: Double) -> Bool {
        if e != epoch { epoch = e; writes = 0; repeats = 0; started = false }
        writes += written
        repeats += repeated
        guard !started, fill >= Self.startFill, repeats * Self.repeatLimit <= writes else { return false }
        started = true
        return true
    }

    /// Asks for the write-back of `files`' dirty pages to start (coalesced with a request
    /// not yet taken). Starts the thread at the first request.
    func request(_ files: [any StorageFile]) {
        cond.lock()
        defer { cond.unlock() }
        guard !stopping else { return }
        for f in files { pending[ObjectIdentifier(f as AnyObject)] = f }
        if !running {
            running = true
            Threads.start(name: "jetstore-writeback", stackSize: 256 << 10) { [self] in loop() }
        }
        cond.signal()
    }

    private func loop() {
        defer { done.signal() }
        while true {
            cond.lock()
            while pending.isEmpty && !stopping { cond.wait() }
            if stopping { cond.unlock(); return }
            let files = Array(pending.values)
            pending.removeAll(keepingCapacity: true)
            cond.unlock()
            for f in files { f.flushBehind() }
        }
    }

    /// Stops the thread, waiting for a write-back start in progress: before the files close.
    /// Idempotent; a request after it is ignored.
    func stop() {
        let wasRunning = cond.withLock { () -> Bool in
            let r = running && !stopping
            stopping = true
            pending.removeAll()
            cond.signal()
            return r
        }
        if wasRunning { done.wait() }
    }
}
