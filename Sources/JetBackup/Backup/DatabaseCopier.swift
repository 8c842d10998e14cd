import Foundation
import JetStore

/// Copies a live database file into a backup set page by page, verifying every page's
/// checksum and number on the way. A page that fails is read again (it may be changing
/// under us: the engine writes pages while we read) up to `retries` times with backoff, as
/// ESE does; one that still fails is `JET_errReadVerifyFailure` naming database and page.
/// Memory: one fixed buffer, whatever the database size.
struct DatabaseCopier {
    static let chunkBytes = 1 << 20
    static let retries = 16
    /// Bytes mapped at a time, and how many such windows may be mapped at once (the fast
    /// path's resident memory is their product).
    static let windowBytes = 8 << 20
    static let windowsInFlight = 3

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
        var out = try SetFileWriter(fs: fs, path: path)
        // Two buffers: SHA-256 of one runs on the other core while the next is read and verified.
        let hasher = PipelinedSHA256(slots: 2, windows: Self.windowsInFlight)
        out.pipelined = hasher
        let pagesPerChunk = max(1, Self.chunkBytes / ps)
        let buffers = (0..<2).map { _ in UnsafeMutableRawBufferPointer.allocate(byteCount: pagesPerChunk * ps, alignment: 4096) }
        defer {
            _ = hasher.finalizeHex()
            for b in buffers { b.deallocate() }
        }
        var pgno = 0
        var chunk = 0
        do {
            // Fast path: the file as it is now, mapped window by window; pages written and
            // hashed straight from the page cache (one copy, as cp's copy_file_range). The
            // header pages, which the image changes, and anything the file grew by go through
            // the buffers below. Each window is unmapped once hashed: memory stays flat. The
            // hasher runs on the other core as far behind as the windows in flight allow.
            let mappedPages = Int(try src.size()) / ps
            if mappedPages > 2 {
                // Pages 0 and 1 first, through a buffer (the image marks its header).
                let head = buffers[0]
                hasher.wait(slot: 0)
                let n0 = try src.read(at: 0, into: UnsafeMutableRawBufferPointer(rebasing: head[0..<(2 * ps)]))
                if n0 == 2 * ps {
                    for k in 0..<2 {
                        let page = UnsafeMutableRawBufferPointer(rebasing: head[(k * ps)..<((k + 1) * ps)])
                        try verify(page, pgno: UInt32(k), src: src)
                        try markImage(page, pgno: UInt32(k))
                    }
                    try out.append(UnsafeRawBufferPointer(rebasing: head[0..<(2 * ps)]), slot: 0)
                    try progress(2 * ps)
                    pgno = 2
                    hasher.wait(slot: 0)
                    let window = max(1, Self.windowBytes / ps)
                    while pgno < mappedPages {
                        let count = min(window, mappedPages - pgno)
                        let start = pgno
                        // Up to `windowsInFlight` windows mapped: this one is read and verified
                        // while the hasher still works on the one before (no bubble between
                        // windows). Each is unmapped when the hasher lets go of it.
                        hasher.acquireWindow()
                        defer { hasher.windowDone() }
                        guard let region = src.mapRegion(offset: Int64(start) * Int64(ps), length: count * ps) else { break }
                        let map = region.bytes
                        var p = 0
                        while p < count {
                            let n = min(pagesPerChunk, count - p)
                            var clean = true
                            for k in 0..<n {
                                let lo = (p + k) * ps
                                let v = PageFormat.verify(UnsafeRawBufferPointer(rebasing: map[lo..<(lo + ps)]), pgno: UInt32(start + p + k))
                                if v != .valid && v != .uninitialized { clean = false; break }
                            }
                            if clean {
                                try out.append(region, (p * ps)..<((p + n) * ps))
                            } else {
                                // A page in the middle of a write (or damaged): copy, re-read, verify.
                                let b = buffers[1]
                                hasher.wait(slot: 1)
                                b.copyMemory(from: UnsafeRawBufferPointer(rebasing: map[(p * ps)..<((p + n) * ps)]))
                                for k in 0..<n {
                                    try verify(UnsafeMutableRawBufferPointer(rebasing: b[(k * ps)..<((k + 1) * ps)]), pgno: UInt32(start + p + k), src: src)
                                }
                                try out.append(UnsafeRawBufferPointer(rebasing: b[0..<(n * ps)]), slot: 1)
                            }
                            p += n
                            try progress(n * ps)
                        }
                        pgno += p
                    }
                }
            }
            while true {
                let slot = chunk & 1
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
