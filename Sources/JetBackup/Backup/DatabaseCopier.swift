#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Writes a database image into a backup set from the pages the engine's backup session
/// hands out (verified there, re-read while a write is in flight, header marked as an image).
/// Memory: a fixed set of buffers, whatever the database size.
struct DatabaseCopier {
    static let chunkBytes = 1 << 20
    /// Chunk buffers: how far hashing and writing may lag behind the reader (memory: their total).
    static let buffers = 8
    /// Writes in flight at once.
    static let writers = 4
    /// The image is made durable in steps of at least this much while it is written (see
    /// `Flusher`): the device writes during the copy instead of all of it at the end.
    static let defaultFlushBytes = 16 << 20

    /// The destination's file system.
    let fs: any FileSystem
    let session: any BackupSource
    let database: BackupSession.Database
    var flushBytes = Self.defaultFlushBytes

    struct Result {
        var file: BackupManifest.File
        var pages: Int
    }

    /// Reads, verifies and writes the whole image and waits until it is hashed and durable.
    func copy(to path: String, backupIndex: Int, progress: (Int) throws -> Void) throws -> Result {
        try start(to: path, backupIndex: backupIndex, progress: progress).finish()
    }

    /// Reads and verifies every page and hands the last chunk to the writers; what is left
    /// (the hash's and the writes' tail, the final fsync) is `finish()`, so the caller can
    /// roll and copy the log meanwhile. The returned image must be finished or abandoned.
    func start(to path: String, backupIndex: Int, progress: (Int) throws -> Void) throws -> PendingImage {
        let ps = database.pageSize
        // Each chunk is read into a private buffer and verified there by the engine, then
        // written and hashed from there: what is verified is exactly what is written and
        // hashed, even while the engine writes the same pages. SHA-256 of one buffer runs on
        // the other core, and several are written at once, while the next ones are read and
        // verified. The writes go straight from the page-aligned buffers to the device (no
        // copy into the page cache, no write-back work for the kernel: on a fast disk the
        // copy is bound by the CPU, and SHA-256 needs a core of its own), and the file is
        // fsynced in steps as it goes: on the virtual disks measured (README "Benchmarks") a
        // direct write only reaches the host's cache, and one fsync at the end waited for the
        // whole image.
        let image = try PendingImage(fs: fs, path: path, backupIndex: backupIndex, pageSize: ps,
                                     buffers: Self.buffers, bufferBytes: max(1, Self.chunkBytes / ps) * ps,
                                     writers: Self.writers, flushBytes: flushBytes)
        do {
            var offset: Int64 = 0
            var chunk = 0
            while true {
                let slot = chunk % image.buffers.count
                chunk += 1
                let buffer = image.buffers[slot]
                try image.pipeline.wait(slot: slot)
                let got = try session.readDatabase(database.name, at: offset, into: buffer)
                if got == 0 { break }
                try image.out.append(UnsafeRawBufferPointer(rebasing: buffer[0..<got]), slot: slot)
                offset += Int64(got)
                try progress(got)
                if got < buffer.count { break }
            }
            image.pages = Int(offset / Int64(ps))
            return image
        } catch {
            image.abandon()
            throw error
        }
    }
}

/// A database image whose pages are all read and handed to its pipeline: `finish()` waits
/// for the hash and the writes, fsyncs and closes it; `abandon()` stops and closes it (the
/// file stays for the run's undo to remove). Either frees the buffers; both are idempotent.
final class PendingImage {
    fileprivate var out: SetFileWriter
    fileprivate let pipeline: ChunkPipeline
    fileprivate let buffers: [UnsafeMutableRawBufferPointer]
    fileprivate(set) var pages = 0
    private let path: String
    private let backupIndex: Int
    private var ended = false

    fileprivate init(fs: any FileSystem, path: String, backupIndex: Int, pageSize: Int, buffers n: Int, bufferBytes: Int,
                     writers: Int, flushBytes: Int) throws {
        self.path = path
        self.backupIndex = backupIndex
        out = try SetFileWriter(fs: fs, path: path, direct: true)
        pipeline = ChunkPipeline(file: out.file, slots: n, writers: writers, flushEvery: flushBytes)
        out.pipeline = pipeline
        buffers = (0..<n).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 4096) }
    }

    func finish() throws -> DatabaseCopier.Result {
        precondition(!ended, "image finished twice")
        defer { end() }
        do {
            let sha = try out.finish()
            return DatabaseCopier.Result(
                file: BackupManifest.File(name: FilePaths.lastComponent(path), kind: .database, generation: nil,
                                          backup: backupIndex, size: out.size, crc32c: out.crc, sha256: sha,
                                          rawSize: nil, rawCrc32c: nil),
                pages: pages)
        } catch {
            out.abandon()
            throw error
        }
    }

    func abandon() {
        guard !ended else { return }
        out.abandon()
        end()
    }

    private func end() {
        guard !ended else { return }
        ended = true
        pipeline.drain() // no buffer may still be in use by the pipeline
        for b in buffers { b.deallocate() }
    }

    deinit { abandon() }
}
