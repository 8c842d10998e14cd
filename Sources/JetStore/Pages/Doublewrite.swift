#if canImport(Glibc)
import Glibc
#endif

/// The doublewrite file `edb.dw`: how a page torn by a crash is repaired without page images
/// in the log (InnoDB's doublewrite buffer, written once per page per epoch).
///
/// An epoch starts after every database file was fsynced (a checkpoint, or a full file): from
/// then on a page written in place may be torn by a crash until the next database fsync. The
/// first time in an epoch that a page is written in place, a copy of it goes into a batch of
/// this file, and the batch is fsynced before any page of it is written in place. So after a
/// crash every page that can be torn has a whole copy here, of a version at least as new as
/// the one the last fsync made durable, whose log is durable (the write-ahead rule holds for
/// the batch as for the page). Recovery (`Instance.repairTornPages`), before redo, puts back
/// every copy of the current epoch whose page in place fails its checksum or is older; redo
/// from the checkpoint then brings it forward, since the epoch began no earlier than the
/// checkpoint recovery starts from (`checkpointLocked` starts the epoch before it writes
/// `edb.chk`). A page written again in the same epoch needs no new copy: if that write tears,
/// the copy of its first write and the log rebuild it — except a split's new page made from
/// its old page's cells (`PageFrame.needsFreshCopy`): the old page may reach the disk while the
/// new one does not, and redo cannot rebuild it from an old page past the split.
///
/// Crash points inside this file's own writes: a batch torn, or not yet synced, means none of
/// its pages was written in place, so the pages in place are whole; its header then fails its
/// checksum, or a torn copy fails its own, or a copy left from an earlier batch fails the
/// directory's page number or dbtime, and nothing of it is used. An epoch's batch 0 (no pages)
/// is written and fsynced at offset 0 when it starts, so batches of older epochs further on
/// (another random epoch number) are never taken for this one's.
final class Doublewrite {
    let fs: any FileSystem
    let path: String
    let pageSize: Int
    /// Opened (created if missing) when the first epoch starts: opening an instance that then
    /// fails (an old log format) leaves no new file behind.
    private var file: (any StorageFile)?
    /// Bytes of copies an epoch may hold; past it the databases are fsynced and a new epoch starts.
    let capacity: Int
    private(set) var epoch: UInt64 = 0
    private var batch: UInt32 = 0
    private var offset = 0
    /// Pages copied in this epoch (`PageFrame.key`).
    private var copied = Set<UInt64>()
    /// A page-aligned buffer for a batch's header pages (direct writes need aligned buffers).
    private let buffer: UnsafeMutableRawBufferPointer

    init(fs: any FileSystem, path: String, pageSize: Int, capacity: Int) {
        self.fs = fs
        self.path = path
        self.pageSize = pageSize
        self.capacity = capacity
        buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: DoublewriteFormat.headerPages(count: PageCache.maxBatch, pageSize: pageSize) * pageSize, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    func close() { file?.close() }

    var exists: Bool { fs.exists(path) }

    private func opened() throws -> any StorageFile {
        if let file { return file }
        let f: any StorageFile
        if fs.exists(path) {
            f = try fs.open(path, .readWriteDirect)
        } else {
            f = try fs.open(path, .createNewDirect)
            try fs.syncDirectory(FilePaths.directory(of: path))
        }
        file = f
        return f
    }

    /// True if the page was not yet copied in this epoch (its in-place write needs a copy first).
    func needsCopy(_ f: PageFrame) -> Bool { !copied.contains(f.key) }

    /// The page was written in place outside this file (page 0 with its shadow): its next
    /// write through the file gets a new copy, so a copy never predates an unlogged change.
    func forget(_ key: UInt64) { copied.remove(key) }

    /// True if `pages` more copies would take the epoch past its capacity (the caller then
    /// fsyncs the databases and starts a new epoch).
    func isFull(adding pages: Int) -> Bool {
        batch > 1 && offset + (pages + DoublewriteFormat.headerPages(count: pages, pageSize: pageSize)) * pageSize > capacity
    }

    /// True if the epoch holds copies (a new one need not start otherwise).
    var hasCopies: Bool { batch > 1 }
    /// How full the epoch is (0–1).
    var fill: Double { Double(offset) / Double(max(1, capacity)) }

    /// Writes copies of sealed `frames` as the next batch (one gathered write, straight from
    /// the frames) and fsyncs: their in-place writes may follow once it returns.
    func write(_ frames: [PageFrame]) throws {
        precondition(frames.count <= PageCache.maxBatch)
        if epoch == 0 { try startEpoch() }
        let file = try opened()
        let header = DoublewriteFormat.Header(pageSize: pageSize, epoch: epoch, batch: batch,
                                              entries: frames.map { .init(dbid: $0.dbid, pgno: $0.pgno, dbtime: $0.dbtime) })
        let h = stage(header)
        try file.write(at: Int64(offset), gathering: [h] + frames.map { $0.bytes })
        try file.sync()
        offset += header.size
        batch += 1
        for f in frames { copied.insert(f.key) }
    }

    /// The header's pages in the aligned buffer.
    private func stage(_ header: DoublewriteFormat.Header) -> UnsafeRawBufferPointer {
        let h = header.encode()
        h.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: h.count) }
        return UnsafeRawBufferPointer(rebasing: buffer[0..<h.count])
    }

    /// Starts a new epoch: batch 0 at offset 0, fsynced. The caller has fsynced every database.
    func startEpoch() throws {
        var rng = SystemRandomNumberGenerator()
        var e: UInt64 = 0
        while e == 0 || e == epoch { e = rng.next() }
        let file = try opened()
        let header = DoublewriteFormat.Header(pageSize: pageSize, epoch: e, batch: 0, entries: [])
        let h = stage(header)
        try file.write(at: 0, h)
        try file.sync()
        epoch = e
        batch = 1
        offset = h.count
        copied.removeAll(keepingCapacity: true)
    }

    /// At a clean shutdown, after a new epoch started: the copies of earlier epochs are of no
    /// use to anyone, so the file keeps only the epoch's start.
    func shrink() throws {
        guard let file, !hasCopies, try file.size() > Int64(offset) else { return }
        try file.truncate(to: Int64(offset))
        try file.sync()
    }

    // MARK: Recovery

    /// A page copy of the current epoch, as its batch's directory names it.
    struct Copy {
        let dbid: UInt16
        let pgno: UInt32
        let dbtime: UInt64
        /// Where the copy is in the file.
        let offset: Int64
    }

    /// The copies of the epoch the file holds (the one whose batch 0 is at offset 0), batch by
    /// batch until one is missing, torn or of another epoch, in file order. Only directories
    /// are read; `read` reads and checks a copy.
    func scan(_ body: (Copy) throws -> Void) throws {
        guard fs.exists(path) else { return }
        // Read through a descriptor of its own: the writing one may bypass the page cache,
        // which takes only aligned buffers.
        let file = try fs.open(path, .readOnly)
        defer { file.close() }
        let size = Int(try file.size())
        var at = 0
        var expected: UInt32 = 0
        var current: UInt64?
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        defer { page.deallocate() }
        while at + pageSize <= size {
            guard try file.read(at: Int64(at), into: page) == pageSize,
                  let length = DoublewriteFormat.Header.length(UnsafeRawBufferPointer(page), pageSize: pageSize),
                  at + length <= size else { return }
            var head = [UInt8](repeating: 0, count: length)
            guard try head.withUnsafeMutableBytes({ try file.read(at: Int64(at), into: $0) }) == length,
                  let h = head.withUnsafeBytes({ DoublewriteFormat.Header.decode($0, pageSize: pageSize) }),
                  h.batch == expected, current == nil || h.epoch == current else { return }
            current = h.epoch
            for (k, e) in h.entries.enumerated() {
                try body(Copy(dbid: e.dbid, pgno: e.pgno, dbtime: e.dbtime, offset: Int64(at + length + k * pageSize)))
            }
            at += h.size
            expected += 1
        }
    }

    /// Reads a copy into `page`; true if it is whole and the one its directory names (checksum,
    /// page number, dbtime). A copy torn while its batch was written, or left from an earlier
    /// batch, is false.
    func read(_ c: Copy, into page: UnsafeMutableRawBufferPointer) throws -> Bool {
        let file = try fs.open(path, .readOnly)
        defer { file.close() }
        guard try file.read(at: c.offset, into: page) == pageSize else { return false }
        return PageFormat.verify(UnsafeRawBufferPointer(page), pgno: c.pgno) == .valid && page.u64(PageFormat.dbtimeOffset) == c.dbtime
    }
}
