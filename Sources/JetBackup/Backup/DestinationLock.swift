#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A backup run's claim on its destination directory: an exclusive lock on
/// `DIR/.jetbackup-lock`, taken before anything in DIR is looked at or written and held to
/// the end of the run. So the check that DIR is empty (or holds the set to extend or replace)
/// and the writes that follow are one step for every other run, of any instance: a second
/// run is refused with `JET_errBackupInProgress` whatever the timing.
///
/// The file is removed when the run ends (a removed lock file is never locked again: see
/// `FileSystem.lock`). One left by a killed run is harmless: no reader looks at it, an empty
/// directory holding only it counts as empty, and the next run locks it again.
struct DestinationLock {
    let path: String
    let fs: any FileSystem
    let handle: any FileLock

    static func acquire(_ dir: String, owner: String, fs: any FileSystem) throws -> DestinationLock {
        let p = FilePaths.join(dir, BackupSetLayout.lock)
        do {
            return DestinationLock(path: p, fs: fs, handle: try fs.lock(p, owner: owner))
        } catch let e as JetError where e.code == .fileAccessDenied {
            let who = PosixFileSystem.describeHolder(ArraySlice((try? fs.readAll(p)) ?? []))
            throw JetError(.backupInProgress, "backup directory \(dir) is in use by another backup (\(who)); nothing was checked or written: "
                + "wait for it to finish, or use another directory")
        }
    }

    /// Removes the file, then lets go of the lock.
    func release() {
        try? fs.remove(path)
        handle.release()
    }
}
