import Foundation
import JetStore

/// Writes log generations into a backup set from what the engine's backup session hands
/// out (read whole and chain-checked there). With compression, several generations are read
/// and compressed at once (one per core).
struct LogCopier {
    /// The destination's file system.
    let fs: any FileSystem
    let session: any BackupSource
    let compressionLevel: Int?

    struct Copied {
        var file: BackupManifest.File
        var header: LogFormat.Header
        var rawSize: Int64
        /// The latest commit time of the transactions that end in this generation or one
        /// copied before it in the same call (nil: none yet).
        var lastCommit: UInt64?
    }

    /// Copies generations in order into `dir`; the first links to `previousCreation` when
    /// given. `progress` gets the raw bytes of each one done.
    func copy(_ generations: [UInt32], into dir: String, backupIndex: Int, previousCreation: UInt64?,
              isCancelled: () -> Bool, progress: (String, Int) throws -> Void) throws -> [Copied] {
        var results: [Copied] = []
        var unsynced: [any StorageFile] = []
        defer { for f in unsynced { f.close() } }
        // Commit times for the manifest (a point-in-time restore checks a time against them).
        var scanner = LogReader.CommitScanner()
        var lastCommit: UInt64?
        // Work in groups of two (two cores): read, verify, parse for commit times and compress
        // concurrently, then write in order.
        var i = 0
        while i < generations.count {
            if isCancelled() { throw JetError(.termInProgress, "the backup was interrupted (signal or shutdown); nothing of it was kept") }
            let group = Array(generations[i..<min(generations.count, i + 2)])
            let prepared = Slots<(BackupSession.LogFile, LogReader.Generation, [UInt8]?)>(count: group.count)
            let me = self
            let link = i == 0 ? previousCreation : nil
            DispatchQueue.concurrentPerform(iterations: group.count) { k in
                prepared.set(k, Result {
                    let log = try me.session.readLog(group[k], previousCreation: k == 0 ? link : nil)
                    let parsed = try LogReader.parse(log.bytes, path: log.fileName)
                    let packed = try me.compressionLevel.map { level in try log.bytes.withUnsafeBytes { try Zstd.compress($0, level: level) } }
                    return (log, parsed, packed)
                })
            }
            for k in group.indices {
                let (log, parsed, packed) = try prepared.get(k)
                let commits = try scanner.feed(parsed)
                lastCommit = ([lastCommit] + commits.map(\.time)).compactMap { $0 }.max()
                let name = packed == nil ? log.fileName : log.fileName + ".zst"
                var w = try SetFileWriter(fs: fs, path: FilePaths.join(dir, name))
                do {
                    try (packed ?? log.bytes).withUnsafeBytes { try w.append($0) }
                    // An upload holds its bytes until it is completed: one at a time, so memory
                    // stays one generation whatever the run copies.
                    let sha: String
                    if fs.objectStore != nil {
                        sha = try w.finish()
                    } else {
                        sha = w.finishDeferringSync()
                        unsynced.append(w.file)
                    }
                    let rawCRC = packed == nil ? nil : CRC32C.checksum(log.bytes)
                    results.append(Copied(file: BackupManifest.File(name: name, kind: .log, generation: log.generation, backup: backupIndex,
                                                                    size: w.size, crc32c: w.crc, sha256: sha,
                                                                    rawSize: packed == nil ? nil : Int64(log.bytes.count), rawCrc32c: rawCRC),
                                          header: log.header, rawSize: Int64(log.bytes.count), lastCommit: lastCommit))
                } catch {
                    w.abandon()
                    throw error
                }
                try progress(name, log.bytes.count)
            }
            i += group.count
        }
        // Every copied generation durable before the manifest may name it.
        let files = unsynced
        unsynced = []
        try SetFileWriter.syncAll(files)
        return results
    }
}

/// Results filled in by concurrent workers, read after they all finished.
final class Slots<T>: @unchecked Sendable {
    private var items: [Result<T, Error>?]
    private let lock = NSLock()
    init(count: Int) { items = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); items[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> T {
        lock.lock(); defer { lock.unlock() }
        guard let r = items[i] else { throw JetError(.diskIO, "internal: a worker produced no result") }
        return try r.get()
    }
}
