import Foundation
import JetStore

/// Copies finished log generations into a backup set, verifying each on the way: header
/// checksum and signature, generation number, the link to the previous generation, and
/// every record's checksum. With compression, several generations are compressed at once
/// (one per core).
struct LogCopier {
    let fs: any FileSystem
    let signature: Signature
    let compressionLevel: Int?

    struct Copied {
        var file: BackupManifest.File
        var header: LogFormat.Header
        var rawSize: Int64
    }

    /// Reads and verifies one generation; nil link check when `previous` is nil.
    func readVerified(_ path: String, generation: UInt32) throws -> (LogReader.Generation, [UInt8]) {
        let bytes = try fs.readAll(path)
        let g = try LogReader.parse(bytes, path: path)
        guard g.header.signature == signature else {
            throw JetError(.logReadVerifyFailure, "log generation \(path) belongs to another instance (its signature differs); it cannot be backed up")
        }
        guard g.header.generation == generation else {
            throw JetError(.logReadVerifyFailure, "\(path) holds generation \(g.header.generation), its name says \(generation)")
        }
        if case .bad(let o, let reason, _) = g.end {
            throw JetError(.logReadVerifyFailure, "log generation \(path) is damaged at offset \(o) (\(reason)); the backup stopped. Run 'jetbackup check', and take a full backup once the log is sound")
        }
        return (g, bytes)
    }

    /// Copies generations in order into `dir`. `progress` gets the raw bytes of each one done.
    func copy(_ generations: [UInt32], source: (UInt32) -> String, into dir: String, backupIndex: Int,
              previousCreation: UInt64?, isCancelled: () -> Bool, progress: (String, Int) throws -> Void) throws -> [Copied] {
        var results: [Copied] = []
        var unsynced: [any StorageFile] = []
        defer { for f in unsynced { f.close() } }
        var previous = previousCreation
        // Work in groups of two (two cores): read, verify and compress concurrently, then write in order.
        var i = 0
        while i < generations.count {
            if isCancelled() { throw JetError(.termInProgress, "the backup was interrupted (signal or shutdown); nothing of it was kept") }
            let group = Array(generations[i..<min(generations.count, i + (compressionLevel == nil ? 1 : 2))])
            let paths = group.map(source)
            let prepared = Slots<(LogReader.Generation, [UInt8], [UInt8]?)>(count: group.count)
            let me = self
            DispatchQueue.concurrentPerform(iterations: group.count) { k in
                prepared.set(k, Result {
                    let (g, raw) = try me.readVerified(paths[k], generation: group[k])
                    let packed = try me.compressionLevel.map { level in try raw.withUnsafeBytes { try Zstd.compress($0, level: level) } }
                    return (g, raw, packed)
                })
            }
            for (k, gen) in group.enumerated() {
                let (g, raw, packed) = try prepared.get(k)
                if let p = previous, g.header.previousCreationTime != p {
                    throw JetError(.logReadVerifyFailure, "log generation \(source(gen)) does not follow generation \(gen - 1) (creation times do not link); the log is damaged")
                }
                previous = g.header.creationTime
                let name = packed == nil ? FileNames.archivedLog(gen) : FileNames.archivedLog(gen) + ".zst"
                var w = try SetFileWriter(fs: fs, path: FilePaths.join(dir, name))
                do {
                    try (packed ?? raw).withUnsafeBytes { try w.append($0) }
                    let sha = w.finishDeferringSync()
                    unsynced.append(w.file)
                    let rawCRC = packed == nil ? nil : CRC32C.checksum(raw)
                    results.append(Copied(file: BackupManifest.File(name: name, kind: "log", generation: gen, backup: backupIndex,
                                                                    size: w.size, crc32c: w.crc, sha256: sha,
                                                                    rawSize: packed == nil ? nil : Int64(raw.count), rawCrc32c: rawCRC),
                                          header: g.header, rawSize: Int64(raw.count)))
                } catch {
                    w.abandon()
                    throw error
                }
                try progress(name, raw.count)
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
