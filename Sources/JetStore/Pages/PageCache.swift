/// A bounded buffer cache shared by all databases of an instance (CLOCK replacement, with
/// more chances for branch pages: `PageFrame.touch`).
/// Used only under the engine lock. Pinned frames (in use by the running operation, or
/// changed by the open transaction) are never evicted; when all frames are pinned the
/// cache grows past its bound until the transaction ends, then shrinks back.
final class PageCache {
    let capacity: Int
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

    // MARK: Write order

    /// `target` was made from `source`'s cells by a split logged as `PageChange.move`: redo
    /// can rebuild `target` only from `source` as it was before the split, so `target` must
    /// be durable no later than any version of `source` written after it. From now on
    /// `source` is written only in the batch of `target`'s next write, or after it
    /// (`writeBatches`), and that write puts a copy of `target` in the doublewrite file,
    /// durable before any page of the batch is written in place.
    func splitMoved(from source: PageFrame, to target: PageFrame) {
        source.splitTargets.append(target)
        target.needsFreshCopy = true
    }

    /// Writes `frames` back with the split targets they wait on, in as many batches as that
    /// takes (`writeBatches`); each is clean afterwards.
    func write(_ frames: [PageFrame]) throws {
        for batch in writeBatches(frames, limit: batchSize) {
            try writeBack(batch)
            for g in batch { g.markWritten() }
        }
    }

    /// `frames` and the dirty split targets they wait on (and those these wait on), in
    /// batches of at most `limit` pages where a page's targets come in its batch or an
    /// earlier one. A page and all it waits on stay in one batch unless that is more than
    /// `limit` pages; then they are cut with the targets first (a cycle — a page split into a
    /// page that later split back into it before either was written — is only whole when
    /// it fits one batch).
    func writeBatches(_ frames: [PageFrame], limit: Int) -> [[PageFrame]] {
        var seen = Set<ObjectIdentifier>()
        var batches: [[PageFrame]] = []
        var current: [PageFrame] = []
        for f in frames where !seen.contains(ObjectIdentifier(f)) {
            let group = Self.targetsFirst(f, &seen)
            if !current.isEmpty && current.count + group.count > limit {
                batches.append(current)
                current = []
            }
            for g in group {
                if current.count == limit {
                    batches.append(current)
                    current = []
                }
                current.append(g)
            }
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// `f` after the dirty split targets it waits on, each after its own (post-order,
    /// without recursion: a chain can be long).
    private static func targetsFirst(_ f: PageFrame, _ seen: inout Set<ObjectIdentifier>) -> [PageFrame] {
        var out: [PageFrame] = []
        var stack: [(frame: PageFrame, next: Int)] = [(f, 0)]
        seen.insert(ObjectIdentifier(f))
        while !stack.isEmpty {
            let (g, i) = stack[stack.count - 1]
            if i < g.splitTargets.count {
                stack[stack.count - 1].next += 1
                let t = g.splitTargets[i]
                if t.dirty && !seen.contains(ObjectIdentifier(t)) {
                    seen.insert(ObjectIdentifier(t))
                    stack.append((t, 0))
                }
            } else {
                out.append(g)
                stack.removeLast()
            }
        }
        return out
    }

    /// True if `f` waits on a split target (directly or through others) that is pinned: one
    /// the open transaction holds has bytes not yet logged, so neither can be written now.
    /// (A target the open transaction made is not dirty yet, and not durable either.)
    private func waitsOnPinned(_ f: PageFrame) -> Bool {
        guard !f.splitTargets.isEmpty else { return false }
        var seen = Set<ObjectIdentifier>([ObjectIdentifier(f)])
        var stack = f.splitTargets
        while let t = stack.popLast() {
            guard t.dirty || t.inTransaction, seen.insert(ObjectIdentifier(t)).inserted else { continue }
            if t.pins > 0 { return true }
            stack.append(contentsOf: t.splitTargets)
        }
        return false
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
