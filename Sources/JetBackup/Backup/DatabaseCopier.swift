import Foundation
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

    func copy(to path: String, backupIndex: Int, progress: (Int) throws -> Void) throws -> Result {
        let ps = database.pageSize
        var out = try SetFileWriter(fs: fs, path: path)
        // Each chunk is read into a private buffer and verified there by the engine, then
        // written and hashed from there: what is verified is exactly what is written and
        // hashed, even while the engine writes the same pages. SHA-256 of one buffer runs on
        // the other core, and several are written at once, while the next ones are read and
        // verified. The writes are buffered and fsynced in steps as they go, and the flushed
        // pages dropped from the cache: on the virtual disks measured (README "Benchmarks") a
        // direct write only reaches the host's cache, so its fsync at the end still waited for
        // the whole image, and one day it was slower than buffered writes as well.
        let pipeline = ChunkPipeline(file: out.file, slots: Self.buffers, writers: Self.writers, flushEvery: flushBytes)
        out.pipeline = pipeline
        let pagesPerChunk = max(1, Self.chunkBytes / ps)
        let buffers = (0..<Self.buffers).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: pagesPerChunk * ps, alignment: 4096) }
        defer {
            pipeline.drain()
            for b in buffers { b.deallocate() }
        }
        var offset: Int64 = 0
        var chunk = 0
        do {
            while true {
                let slot = chunk % buffers.count
                chunk += 1
                let buffer = buffers[slot]
                try pipeline.wait(slot: slot)
                let got = try session.readDatabase(database.name, at: offset, into: buffer)
                if got == 0 { break }
                try out.append(UnsafeRawBufferPointer(rebasing: buffer[0..<got]), slot: slot)
                offset += Int64(got)
                try progress(got)
                if got < buffer.count { break }
            }
            let sha = try out.finish()
            return Result(file: BackupManifest.File(name: FilePaths.lastComponent(path), kind: .database, generation: nil,
                                                    backup: backupIndex, size: out.size, crc32c: out.crc, sha256: sha,
                                                    rawSize: nil, rawCrc32c: nil),
                          pages: Int(offset / Int64(ps)))
        } catch {
            out.abandon()
            throw error
        }
    }
}
