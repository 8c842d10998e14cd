/// A bounded buffer cache shared by all databases of an instance (CLOCK replacement, with
/// more chances for branch pages: `PageFrame.touch`).
/// Used only under the engine lock. Pinned frames (in use by the running operation, or
/// changed by the open transaction) are never evicted; when all frames are pinned the
/// cache grows past its bound until the transaction ends, then shrinks back.
final class PageCache {
    /// Pages held at most (see above); recovery lowers it while it runs (`Instance.recover`).
    var capacity: Int
    private var frames: [PageFrame] = []
    private var index: [UInt64: Int] = [:]
    private var hand = 0
    /// Frames changed by the open transaction, in first-change order.
    private(set) var transactionFrames: [PageFrame] = []
    /// The open transaction's changes, in the order they were made.
    let redo = TransactionRedo()
    /// Frames pinned by the running operation.
    private var operationPins: [PageFrame] = []

    /// Writes dirty frames back, in one batch (the engine makes the log durable first and
    /// writes through the doublewrite file: `Instance.writePages`).
    let writeBack: ([PageFrame]) throws -> Void
    let database: (UInt16) throws -> DatabaseFile
    /// Dirty frames written together when an eviction meets one: each batch costs an fsync
    /// of the doublewrite file, so they are written many at a time (InnoDB flushes in batches too).
    let batchSize: Int
    /// Frame memory by page size (an instance's databases share one).
    private var buffers: [Int: PageBuffers] = [:]

    init(capacity: Int, pageSize: Int, database: @escaping (UInt16) throws -> DatabaseFile,
         writeBack: @escaping ([PageFrame]) throws -> Void) {
        self.capacity = max(16, capacity)
        self.database = database
        self.writeBack = writeBack
        self.batchSize = PageCache.batchSize(capacity: self.capacity, pageSize: pageSize)
    }

    /// The most pages written back in one batch (the doublewrite file holds a batch whole).
    static let maxBatch = 1024

    /// A quarter of the cache, at most `maxBatch` pages and 8 MiB.
    static func batchSize(capacity: Int, pageSize: Int) -> Int {
        max(1, min(maxBatch, capacity / 4, (8 << 20) / pageSize))
    }

    var count: Int { frames.count }

    /// Bytes of frame memory the cache holds (what its bound costs in memory).
    var bytesHeld: Int { buffers.values.reduce(0) { $0 + $1.bytesHeld } }

    /// The frame of a page, read from disk (and verified) if not cached. Pinned until
    /// `endOperation`.
    func fetch(_ dbid: UInt16, _ pgno: UInt32) throws -> PageFrame {
        let key = PageFrame.key(dbid, pgno)
        if let i = index[key] {
            let f = frames[i]
            f.touch()
            pin(f)
            return f
        }
        let db = try database(dbid)
        let f = try frame(dbid, pgno, db, zeroed: false)
        try db.readPage(pgno, into: f.buffer)
        f.touch()
        try insert(f)
        pin(f)
        return f
    }

    /// A frame for a page that is new (beyond the end of the file): zeroed, not read.
    func create(_ dbid: UInt16, _ pgno: UInt32) throws -> PageFrame {
        let key = PageFrame.key(dbid, pgno)
        if let i = index[key] {
            let f = frames[i]
            pin(f)
            return f
        }
        let db = try database(dbid)
        let f = try frame(dbid, pgno, db, zeroed: true)
        try insert(f)
        pin(f)
        return f
    }

    /// A cached frame without reading.
    func cached(_ dbid: UInt16, _ pgno: UInt32) -> PageFrame? {
        index[PageFrame.key(dbid, pgno)].map { frames[$0] }
    }

    /// Redo's fetch: as `fetch`, but when `blankIfUnreadable` a page that was never written or
    /// fails its checks comes back zeroed (`blank`), for a change that defines the whole page.
    func fetchForRedo(_ dbid: UInt16, _ pgno: UInt32, blankIfUnreadable: Bool) throws -> (frame: PageFrame, blank: Bool) {
        if let i = index[PageFrame.key(dbid, pgno)] {
            let f = frames[i]
            f.touch()
            pin(f)
            return (f, false)
        }
        let db = try database(dbid)
        let f = try frame(dbid, pgno, db, zeroed: false)
        var blank = false
        do {
            try db.readPage(pgno, into: f.buffer)
            f.touch()
        } catch let e as JetError where blankIfUnreadable && e.code == .readVerifyFailure {
            f.buffer.initializeMemory(as: UInt8.self, repeating: 0)
            blank = true
        }
        try insert(f)
        pin(f)
        return (f, blank)
    }

    /// A new frame for a page of `db`, its buffer from the pool of its page size.
    private func frame(_ dbid: UInt16, _ pgno: UInt32, _ db: DatabaseFile, zeroed: Bool) throws -> PageFrame {
        if buffers[db.pageSize] == nil { buffers[db.pageSize] = PageBuffers(pageSize: db.pageSize) }
        return PageFrame(dbid: dbid, pgno: pgno, buffers: buffers[db.pageSize]!, zeroed: zeroed)
    }

    private func pin(_ f: PageFrame) {
        f.pins += 1
        operationPins.append(f)
    }

    /// Pins `f` beyond the current operation, until `release(f)`: redo holds a page that is
    /// in the middle of a transaction (`RedoBatch.run`), which must not be written then.
    func hold(_ f: PageFrame) { f.pins += 1 }

    /// Ends a `hold`.
    func release(_ f: PageFrame) { f.pins -= 1 }

    /// Unpins what the operation fetched. A read that pinned more pages than the cache holds
    /// (a scan's batch) made it grow: outside a transaction it shrinks back to its bound here,
    /// or every read after it would keep the grown size.
    func endOperation() {
        for f in operationPins { f.pins -= 1 }
        operationPins.removeAll(keepingCapacity: true)
        if transactionFrames.isEmpty && frames.count > capacity { try? shrink() }
    }

    /// Marks a frame as changed by the open transaction (pinned until commit or abort).
    func beginChange(_ f: PageFrame) {
        guard !f.inTransaction else { return }
        f.inTransaction = true
        f.baseDbtime = f.dbtime
        f.pins += 1
        transactionFrames.append(f)
    }

    /// After the commit was logged: the frames are dirty, unpinned, their changes cleared.
    func endTransaction(loggedEnd: UInt64?) {
        redo.reset()
        for f in transactionFrames {
            f.inTransaction = false
            f.redoCount = 0
            f.pins -= 1
            f.dirty = true
            if let end = loggedEnd { f.lastLoggedEnd = end }
        }
        transactionFrames.removeAll(keepingCapacity: true)
        try? shrink()
    }

    private func insert(_ f: PageFrame) throws {
        if frames.count >= capacity { try evictOne() }
        index[f.key] = frames.count
        frames.append(f)
    }

    /// Evicts one unpinned frame that has no chance left (each pass of the hand takes one).
    /// A dirty one is written back first, with up to a batch of the other dirty frames the
    /// hand would evict on this sweep (unpinned, no chance left): they stay cached, clean. Frames used since are left out, since they are
    /// likely to change again before their turn. With every frame pinned it evicts nothing and
    /// the cache grows.
    private func evictOne() throws {
        let n = frames.count
        guard n > 0 else { return }
        for _ in 0..<(Int(PageFrame.branchChances + 1) * n + 1) {
            if hand >= frames.count { hand = 0 }
            let f = frames[hand]
            if f.pins > 0 { hand += 1; continue }
            if f.chances > 0 { f.chances -= 1; hand += 1; continue }
            if f.dirty {
                if waitsOnPinned(f) { hand += 1; continue }
                var batch = [f]
                var k = hand + 1
                for _ in 1..<n where batch.count < batchSize {
                    if k >= n { k = 0 }
                    let g = frames[k]
                    if g.dirty && g.pins == 0 && g.chances == 0 && !waitsOnPinned(g) { batch.append(g) }
                    k += 1
                }
                try write(batch)
            }
            remove(at: hand)
            return
        }
    }

    private func remove(at i: Int) {
        let f = frames[i]
        index.removeValue(forKey: f.key)
        let last = frames.count - 1
        if i != last {
            frames[i] = frames[last]
            index[frames[i].key] = i
        }
        frames.removeLast()
    }

    private func shrink() throws {
        var guardCount = frames.count
        while frames.count > capacity && guardCount > 0 {
            let before = frames.count
            try evictOne()
            if frames.count == before { break }
            guardCount -= 1
        }
    }

    /// Dirty frames, sorted by database and page (sequential writes at a checkpoint).
    func dirtyFrames() -> [PageFrame] {
        frames.filter { $0.dirty }.sorted { $0.key < $1.key }
    }

    /// Drops every frame (after the databases were flushed, or to forget after a failure).
    func removeAll() {
        frames.removeAll()
        index.removeAll()
        transactionFrames.removeAll()
        operationPins.removeAll()
        hand = 0
    }

    /// Drops the frames of the open transaction without logging them (the transaction
    /// failed before its commit): the caller must then stop using the cache's content.
    func abandonTransaction() {
        redo.reset()
        for f in transactionFrames {
            f.inTransaction = false
            f.redoCount = 0
            f.pins -= 1
            if let i = index[f.key] { remove(at: i) }
        }
        transactionFrames.removeAll()
    }
}
