#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Generation files kept for reuse, as PostgreSQL recycles WAL segments: a truncation renames
/// the generations it removes to spare names (`FileNames.spareLog`) instead of deleting them,
/// up to `limit`, and a roll overwrites a spare (`LogWriter.prepareNext`) instead of creating
/// a file and allocating its blocks. A rename changes one directory entry; an unlink frees
/// every block of the file, which on this kind of disk costs about a millisecond a file —
/// the most of an incremental backup's truncation.
///
/// A spare holds an old generation's records until it is overwritten, so nothing reads one as
/// a log: its name is not a generation's, and a roll trusts the file only after rewriting it
/// whole (header, zeros) and fsyncing it (`LogWriter.overwriteGeneration`).
final class LogSpares: @unchecked Sendable {
    let fs: any FileSystem
    let directory: String
    /// Spares kept at most; generations past it are deleted.
    let limit: Int
    private let lock = Lock()
    private var names: [String]

    init(fs: any FileSystem, directory: String, limit: Int) throws {
        self.fs = fs
        self.directory = directory
        self.limit = limit
        names = try fs.list(directory).filter(FileNames.isSpareLog).sorted()
    }

    /// Spares kept for an instance: a quarter of the checkpoint depth in generations, 4 to 64.
    static func limit(checkpointDepth: Int, logFileSize: Int) -> Int {
        min(64, max(4, checkpointDepth / max(1, logFileSize) / 4))
    }

    /// A spare's path, removed from the pool (the caller renames it), or nil.
    func take() -> String? {
        lock.withLock { names.popLast() }.map { FilePaths.join(directory, $0) }
    }

    /// Removes archived generations `victims` (oldest first): the first ones the pool has room
    /// for become spares, the rest are deleted two at a time. Not made durable here (see
    /// `Instance.deleteGenerationsLocked`).
    func retire(_ victims: [UInt32]) throws {
        let room = lock.withLock { max(0, limit - names.count) }
        let kept = victims.prefix(room)
        for g in kept {
            let name = FileNames.spareLog(g)
            try fs.rename(FilePaths.join(directory, FileNames.archivedLog(g)), FilePaths.join(directory, name))
            lock.withLock { names.append(name) }
        }
        // Freeing a file's blocks is slow where the file system discards them, and two unlinks overlap.
        let fs = self.fs
        let paths = victims.dropFirst(kept.count).map { FilePaths.join(directory, FileNames.archivedLog($0)) }
        try Slots.run(paths.count, lanes: 2) { try fs.remove(paths[$0]) }
    }
}
