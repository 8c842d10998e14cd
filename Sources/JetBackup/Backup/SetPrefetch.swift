import Dispatch
import JetStore

/// The read-only part of an incremental's check of the set it extends (`ExtendableSet.read`
/// and `ExtendableSet.check`), started on a thread of its own before the instance is open, so
/// that the two overlap (each about 1.2 ms of an incremental of 25 ms, README "Changes").
///
/// It runs without the destination's lock, which is taken only after the instance is open
/// (the order every run keeps). Its result is therefore only a proposal: the incremental,
/// holding the lock, reads the manifest again and uses the result only when the bytes are the
/// ones checked; otherwise — another run extended the set meanwhile, or the check failed (its
/// error is reported by the check done again in order, under the lock) — it checks inline as
/// before. Nothing is written.
public final class SetPrefetch: @unchecked Sendable {
    struct Checked {
        let setDirectory: String
        let manifestBytes: [UInt8]
        let manifest: BackupManifest
        /// The creation time of the set's newest log (`ExtendableSet.check`).
        let previousCreation: UInt64?
    }

    private let done = DispatchGroup()
    private var checked: Checked?

    /// Starts the prefetch of an incremental into `options.directory`; nil for other kinds.
    public static func start(_ options: BackupOptions) -> SetPrefetch? {
        guard options.incremental, !options.atomic, let dir = options.directory else { return nil }
        let p = SetPrefetch()
        let fs = options.fs
        p.done.enter()
        Threads.start(name: "jetbackup-prefetch", stackSize: 1 << 20) {
            defer { p.done.leave() }
            p.checked = try? check(dir, fs: fs)
        }
        return p
    }

    /// The prefetch's work: the set an incremental into `dir` would extend, read and checked.
    static func check(_ dir: String, fs: any FileSystem) throws -> Checked? {
        guard let s = IncrementalBackup.extendable(in: dir, fs: fs) else { return nil }
        let (bytes, manifest) = try ExtendableSet.read(s, fs: fs)
        let creation = try ExtendableSet.check(manifest, setDir: s, fs: fs)
        return Checked(setDirectory: s, manifestBytes: bytes, manifest: manifest, previousCreation: creation)
    }

    /// Waits for the prefetch; its result when it checked the set in `setDir` and the manifest
    /// there is still `bytes` (read again by the caller under the destination's lock).
    func result(setDir: String, manifestBytes bytes: [UInt8]) -> Checked? {
        done.wait()
        guard let c = checked, c.setDirectory == setDir, c.manifestBytes == bytes else { return nil }
        return c
    }

    /// Waits until the prefetch has ended (a run that ends before using it).
    public func wait() { done.wait() }
}
