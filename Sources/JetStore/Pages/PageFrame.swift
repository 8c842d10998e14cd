/// One cached page. Owned by the `PageCache`; touched only under the engine lock.
/// Its buffer, from the cache's `PageBuffers`, lives exactly as long as the frame.
final class PageFrame {
    let dbid: UInt16
    let pgno: UInt32
    let buffer: UnsafeMutableRawBufferPointer
    private let buffers: PageBuffers
    /// Changed in memory since last written to the database file.
    var dirty = false
    /// Log end position of the last record that logged this page: the log must be durable
    /// up to here before the page may be written (write-ahead rule).
    var lastLoggedEnd: UInt64 = 0
    /// Pins: the page is in use by the running operation, or changed by the open transaction.
    var pins = 0
    /// Changed by the open transaction: the dbtime it had before, and how many changes it
    /// logged (`TransactionRedo` holds them).
    var inTransaction = false
    var baseDbtime: UInt64 = 0
    var redoCount = 0
    /// Pages made from this page's cells by a split (`PageChange.move`) since it was last
    /// written: they must be durable no later than this page's next version on disk, or redo
    /// could not rebuild them (`PageCache.writeBatches`).
    var splitTargets: [PageFrame] = []
    /// Made by a split from another page's cells: its next write puts a copy in the
    /// doublewrite file, even if the page was copied there before in this epoch, so it is
    /// durable before any page of its batch is written in place.
    var needsFreshCopy = false
    /// Sweeps of the cache's clock hand the frame survives without being used again: one for
    /// a leaf or any other page, `branchChances` for a branch page (see `touch`).
    var chances: UInt8 = 1

    /// Sixteen: in a database whose branch level nearly fills the cache (4 GiB with the
    /// default 32 MiB) the hand comes round after a few hundred leaves, and a branch page is
    /// used only every few thousand random operations; with 3 chances 0.18 of every insert's
    /// reads were branch pages read again (118 k reads for 100,000 inserts into 4 GiB, 103 k
    /// with 8 chances, 102 k with 16 and 32: one leaf per insert is the floor).
    static let branchChances: UInt8 = 16

    /// Marks the frame used. Every lookup passes through a branch page, but in a database
    /// many times the cache a given one is used only every few thousand random operations,
    /// about as often as the hand comes round: with one chance, the leaves those operations
    /// read pushed the branch level out and each lookup read a branch page again as well as
    /// its leaf. A branch page that goes unused for several sweeps is evicted all the same.
    func touch() { chances = buffer[PageFormat.typeOffset] == PageFormat.PageType.branch.rawValue ? PageFrame.branchChances : 1 }

    /// `zeroed: false` for a frame about to be read from disk (the read fills it).
    init(dbid: UInt16, pgno: UInt32, buffers: PageBuffers, zeroed: Bool = true) {
        self.dbid = dbid
        self.pgno = pgno
        self.buffers = buffers
        // Page-aligned: the doublewrite file takes frames as they are, with direct writes.
        buffer = buffers.take()
        if zeroed { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    deinit { buffers.give(buffer) }

    var key: UInt64 { PageFrame.key(dbid, pgno) }
    static func key(_ dbid: UInt16, _ pgno: UInt32) -> UInt64 { UInt64(dbid) << 32 | UInt64(pgno) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(buffer) }
    var dbtime: UInt64 { buffer.u64(PageFormat.dbtimeOffset) }
    var type: PageFormat.PageType? { PageFormat.PageType(rawValue: buffer[PageFormat.typeOffset]) }
    var count: Int { Int(buffer.u16(PageFormat.countOffset)) }
    var cellStart: Int { Int(buffer.u16(PageFormat.cellStartOffset)) }
    var fragmented: Int { Int(buffer.u16(PageFormat.fragmentedOffset)) }
    var next: UInt32 { buffer.u32(PageFormat.nextOffset) }
    var used: Int { Int(buffer.u32(PageFormat.usedOffset)) }

    // MARK: Changes

    /// Makes `change` on the page and records it in `redo` for the commit's log record: the
    /// change is logged exactly as made, so redo (`PageChange.apply`, the same code) rebuilds
    /// the same bytes from the same page version. `source`: the page a `move` takes its cells
    /// from. The frame must be in the open transaction.
    func log(_ change: PageChange, source: PageFrame? = nil, into redo: TransactionRedo) throws {
        let branch = type == .branch
        try change.apply(to: buffer, pgno: pgno, source: source?.buffer)
        redo.append(change, of: self, branch: branch)
        redoCount += 1
    }

    /// Written to its database file: clean, and no split target waits on it any more.
    func markWritten() {
        dirty = false
        splitTargets.removeAll()
    }
}
