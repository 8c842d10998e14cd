import Foundation
import JetStore

/// Copies a live database file into a backup set page by page, verifying every page's
/// checksum and number on the way. A page that fails is read again (it may be changing
/// under us: the engine writes pages while we read) up to `retries` times with backoff, as
/// ESE does; one that still fails is `JET_errReadVerifyFailure` naming database and page.
/// Memory: a fixed set of buffers, whatever the database size.
struct DatabaseCopier {
    static let chunkBytes = 1 << 20
    /// Chunk buffers: how far the hasher may lag behind the reader (memory: their total).
    static let buffers = 8
    static let retries = 16

    let fs: any FileSystem
    let snapshot: Instance.DatabaseSnapshot
    /// Written into the image's header: it is a backup image, and of which backup.
    let imageInfo: DatabaseHeader.BackupInfo

    struct Result {
        var file: BackupManifest.File
        var pages: Int
    }

    func copy(to path: String, backupIndex: Int, progress: (Int) throws -> Void) throws -> Result {
        let ps = snapshot.pageSize
        let src = try fs.open(snapshot.path, .readOnly)
        defer { src.close() }
        var out = try SetFileWriter(fs: fs, path: path, direct: true)
        // Each chunk is read into a private buffer, verified there, and written and hashed
        // from there: what is verified is exactly what is written and hashed, even while the
        // engine writes the same pages. The buffers are page-aligned, so the image goes to
        // the device directly (no copy into the page cache); SHA-256 of one buffer runs on
        // the other core while the next ones are read and verified.
        let hasher = PipelinedSHA256(slots: Self.buffers)
        out.pipelined = hasher
        let pagesPerChunk = max(1, Self.chunkBytes / ps)
        let buffers = (0..<Self.buffers).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: pagesPerChunk * ps, alignment: 4096) }
        defer {
            _ = hasher.finalizeHex()
            for b in buffers { b.deallocate() }
        }
        var pgno = 0
        var chunk = 0
        do {
            while true {
                let slot = chunk % buffers.count
                chunk += 1
                let buffer = buffers[slot]
                hasher.wait(slot: slot)
                let got = try src.read(at: Int64(pgno) * Int64(ps), into: buffer)
                let pages = got / ps
                if pages == 0 { break }
                for k in 0..<pages {
                    let page = UnsafeMutableRawBufferPointer(rebasing: buffer[(k * ps)..<((k + 1) * ps)])
                    try verify(page, pgno: UInt32(pgno + k), src: src)
                    if pgno + k <= 1 { try markImage(page, pgno: UInt32(pgno + k)) }
                }
                try out.append(UnsafeRawBufferPointer(rebasing: buffer[0..<(pages * ps)]), slot: slot)
                pgno += pages
                try progress(pages * ps)
                if got < buffer.count { break }
            }
            guard pgno >= 3 else {
                throw JetError(.readVerifyFailure, "\(snapshot.path) holds only \(pgno) pages; the database is damaged: restore it from a backup")
            }
            let sha = try out.finish()
            return Result(file: BackupManifest.File(name: FilePaths.lastComponent(path), kind: "database", generation: nil,
                                                    backup: backupIndex, size: out.size, crc32c: out.crc, sha256: sha,
                                                    rawSize: nil, rawCrc32c: nil),
                          pages: pgno)
        } catch {
            out.abandon()
            throw error
        }
    }

    /// Verifies a page, re-reading it while it fails (a write in flight), then gives up.
    private func verify(_ page: UnsafeMutableRawBufferPointer, pgno: UInt32, src: any StorageFile) throws {
        var verdict = PageFormat.verify(UnsafeRawBufferPointer(page), pgno: pgno)
        var attempt = 0
        while verdict != .valid && verdict != .uninitialized {
            if attempt == Self.retries {
                throw PageFormat.error(verdict, file: snapshot.path, pgno: pgno)
            }
            usleep(UInt32(min(50_000, 500 << min(attempt, 7))))
            attempt += 1
            let n = try src.read(at: Int64(pgno) * Int64(page.count), into: page)
            if n < page.count { (page.baseAddress! + n).initializeMemory(as: UInt8.self, repeating: 0, count: page.count - n) }
            verdict = PageFormat.verify(UnsafeRawBufferPointer(page), pgno: pgno)
        }
    }

    /// Marks the header page (and its shadow) of the image: a backup image, `fullCur` set.
    private func markImage(_ page: UnsafeMutableRawBufferPointer, pgno: UInt32) throws {
        guard var h = DatabaseHeader.decode(UnsafeRawBufferPointer(page)) else {
            if pgno == 1 { return } // a shadow that is not a header: page 0 is what counts
            throw JetError(.readVerifyFailure, "page 0 of \(snapshot.path) is not a database header; the database is damaged")
        }
        h.isBackupImage = true
        h.fullCur = imageInfo
        h.encode(into: page)
        PageFormat.seal(page, pgno: pgno)
    }
}
