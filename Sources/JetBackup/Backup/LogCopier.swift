#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Writes log generations into a backup set from what the engine's backup session hands
/// out (read whole and chain-checked there). Several workers each take the next generation
/// as soon as they are free: each reads it, parses it for commit times, compresses it when
/// asked and, on a local destination, writes it with its CRC32C and SHA-256; the results are
/// taken in order. Each copy is fsynced in the background as soon as it is written
/// (`SyncBehind`); all are durable when `copy` returns.
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

    /// Workers: at least two (two cores), four while generations are small (a worker spends
    /// much of its time waiting for its write).
    var lanes: Int { max(2, min(4, (4 << 20) / max(1, session.logFileSize))) }
    /// Generations held (stored and parsed) from the one taken in order on: up to twice the
    /// workers while that stays within about 16 MiB of raw log, never fewer than the workers.
    var window: Int { max(lanes, min(2 * lanes, (16 << 20) / max(1, session.logFileSize))) }

    /// One generation read, parsed and (on a local destination) written by a worker.
    private struct Prepared {
        var log: BackupSession.LogFile
        var scan: LogReader.Scan
        var packed: [UInt8]?
        /// What is stored: the compressed bytes, or the file's as read.
        var stored: FileBytes
        /// The written file (local destination), not yet fsynced; nil for an object store.
        var written: Stored?
    }

    /// What a generation's stored file came to.
    private struct Stored {
        var size: Int64
        var crc: UInt32
        var sha: String
    }

    /// Copies generations in order into `dir`; the first links to `previousCreation` when
    /// given. `progress` gets the raw bytes of each one done.
    func copy(_ generations: [UInt32], into dir: String, backupIndex: Int, previousCreation: UInt64?,
              isCancelled: () -> Bool, progress: (String, Int) throws -> Void) throws -> [Copied] {
        var results: [Copied] = []
        let syncing = SyncBehind(lanes: 2)
        defer { syncing.abandon() }
        // An upload holds its bytes until it is completed: one at a time, in this thread, so
        // memory stays one generation whatever the run copies. Local files are written by
        // the workers, several at once.
        let local = fs.objectStore == nil
        // Commit times for the manifest (a point-in-time restore checks a time against them).
        var scanner = LogReader.CommitScanner()
        var lastCommit: UInt64?
        let me = self
        let work = OrderedWorkers<Prepared>(count: generations.count, lanes: lanes, window: window) { k, _ in
            let log = try me.session.readLog(generations[k], previousCreation: k == 0 ? previousCreation : nil)
            let scan = try log.scan ?? log.bytes.withUnsafeBytes { try LogReader.scan($0, path: log.fileName) }
            let packed = try me.compressionLevel.map { level in try log.bytes.withUnsafeBytes { try Zstd.compress($0, level: level) } }
            var p = Prepared(log: log, scan: scan, packed: packed, stored: packed.map(FileBytes.init) ?? log.bytes)
            if local {
                let name = me.storedName(log, packed)
                p.written = try p.stored.withUnsafeBytes { try me.write($0, name: name, in: dir, syncing: syncing) }
            }
            return p
        }
        defer { work.stop() }
        for k in generations.indices {
            if isCancelled() { throw JetError(.termInProgress, "the backup was interrupted (signal or shutdown); nothing of it was kept") }
            let p = try work.take(k)
            if let e = syncing.failure { throw e }
            let commits = try p.log.bytes.withUnsafeBytes { try scanner.feed(p.scan, bytes: $0, masked: true) }
            lastCommit = ([lastCommit] + commits.map(\.time)).compactMap { $0 }.max()
            let name = storedName(p.log, p.packed)
            let w = try p.written ?? p.stored.withUnsafeBytes { try upload($0, name: name, in: dir) }
            let rawCRC = p.packed == nil ? nil : p.log.bytes.withUnsafeBytes { CRC32C.checksum($0) }
            results.append(Copied(file: BackupManifest.File(name: name, kind: .log, generation: p.log.generation, backup: backupIndex,
                                                            size: w.size, crc32c: w.crc, sha256: w.sha,
                                                            rawSize: p.packed == nil ? nil : Int64(p.log.bytes.count), rawCrc32c: rawCRC),
                                  header: p.log.header, rawSize: Int64(p.log.bytes.count), lastCommit: lastCommit))
            try progress(name, p.log.bytes.count)
        }
        work.stop()
        // Every copied generation durable before the manifest may name it.
        try syncing.finish()
        return results
    }

    private func storedName(_ log: BackupSession.LogFile, _ packed: [UInt8]?) -> String {
        packed == nil ? log.fileName : log.fileName + ".zst"
    }

    /// Writes one generation's stored bytes and hands the file to `syncing`, which fsyncs
    /// and closes it in the background, so the device works on each copy while the next ones
    /// are read and written. Bytes that are whole pages at a page-aligned address (a mapped
    /// generation, or one an owner sent, uncompressed) are written with O_DIRECT straight from
    /// there. A buffered write must first get fresh page-cache pages, and on the VM measured,
    /// after the file system freed many (a truncation, a deleted set), a fresh page costs about
    /// ten times as much: 18 generations then took 48-57 ms buffered against 11 ms direct,
    /// each fsynced (README "Runs of 2026-12-07, seventh session"). Compressed bytes go
    /// through the page cache.
    ///
    /// The whole pages of zeros a generation ends with (the unused end of one finished early,
    /// as every backup's roll finishes the current one) are not written: the copy's file is
    /// extended past what was written, a hole that reads as zeros, so it holds the same bytes
    /// with the same checksums and the device writes only the records.
    private func write(_ bytes: UnsafeRawBufferPointer, name: String, in dir: String, syncing: SyncBehind) throws -> Stored {
        let page = FileBytes.pageAlignment
        let direct = bytes.count % page == 0 && Int(bitPattern: bytes.baseAddress) % page == 0
        let used = Self.lengthBeforeZeroPages(bytes, page: page)
        var w = try SetFileWriter(fs: fs, path: FilePaths.join(dir, name), direct: direct)
        do {
            try w.append(bytes, zerosFrom: used)
        } catch {
            w.abandon()
            throw error
        }
        let sha = w.finishDeferringSync()
        syncing.add(w.file)
        return Stored(size: w.size, crc: w.crc, sha: sha)
    }

    /// `bytes.count` less the whole `page`-byte pages of zeros at its end (never the first
    /// page); all of it when the length is not a whole number of pages.
    static func lengthBeforeZeroPages(_ bytes: UnsafeRawBufferPointer, page: Int) -> Int {
        guard bytes.count % page == 0 else { return bytes.count }
        var used = bytes.count
        while used > page && PageFormat.isAllZero(UnsafeRawBufferPointer(rebasing: bytes[(used - page)..<used])) {
            used -= page
        }
        return used
    }

    /// Writes one generation to an object store: completed (and durable) when this returns.
    private func upload(_ bytes: UnsafeRawBufferPointer, name: String, in dir: String) throws -> Stored {
        var w = try SetFileWriter(fs: fs, path: FilePaths.join(dir, name))
        do {
            try w.append(bytes)
            let sha = try w.finish()
            return Stored(size: w.size, crc: w.crc, sha: sha)
        } catch {
            w.abandon()
            throw error
        }
    }
}
