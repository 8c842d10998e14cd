/// Redo page by page (InnoDB's recovery, which files the log's records by page and applies
/// each page's together): recovery files the page groups of many transactions here, then
/// applies them page after page in page order, each page's groups in log order. A page is
/// read and written once per batch instead of once for every transaction that changes it —
/// with a cache much smaller than the database, replaying random inserts in log order
/// evicted (wrote) and read a page for nearly every record — and in file order.
///
/// Redo of a page depends on no other page but through a split's move (`PageChange.move`),
/// which takes its source page's cells as that page is at that point of the log. The order
/// keeps that exact: before a group with a move is applied, its source is brought up to (not
/// past) the group's place; before a page's group is applied, every move that takes the
/// page's cells earlier in the log is applied. Each page thus goes through the same versions
/// as in redo in log order, and the result is the same pages, byte for byte.
///
/// A batch keeps the transactions' payloads as logged and, per group, where its changes are
/// (decoded when applied) and the next group of its page: `bytes` counts both.
final class RedoBatch {
    /// One page group of the log (`LogOperation.page`); its index in `groups` is its place in
    /// log order.
    struct Group {
        let before: UInt64
        let after: UInt64
        /// The transaction it is in (`payloads`), where its changes start there, how many.
        let payload: Int32
        let changesAt: Int32
        let count: Int32
        /// The page's next group (-1: none).
        var nextInPage: Int32 = -1
        /// A change of the group takes another page's cells (`PageChange.move`).
        var moves = false
        /// Its first change defines the whole page (`PageChange.definesWholePage`).
        var whole = false
    }

    /// One group as `run` hands it to be applied.
    struct Work {
        let seq: Int
        /// The transaction's number, counted over the whole recovery.
        let transaction: Int
        let before: UInt64
        let after: UInt64
        /// Its first change defines the whole page (`PageChange.definesWholePage`).
        let whole: Bool
        /// Its changes if `run` has decoded them (a group with a move); else `changes(of:)`
        /// decodes them, for a page that takes them.
        let changes: [PageChange]?
    }

    /// One page the batch changes: its groups, and how far they are applied.
    final class Page {
        let dbid: UInt16
        let pgno: UInt32
        /// The next group to apply (-1: all are), and the last filed.
        var next: Int32 = -1
        var last: Int32 = -1
        /// The groups whose moves take this page's cells, in log order, and the next not yet applied.
        var takers: [(seq: Int32, page: Page)] = []
        var nextTaker = 0
        /// The applier's decision for the transaction it last saw on this page: whether
        /// the page takes that transaction's changes (`Instance.recover`).
        var transaction = -1
        var takesTransaction = false
        /// Some of a transaction's groups on this page are applied and others are not yet
        /// (a move's source brought up to the move, in the middle of the transaction): the
        /// page must not be written in that state (`run`'s `hold`).
        var held = false

        init(dbid: UInt16, pgno: UInt32) { self.dbid = dbid; self.pgno = pgno }
    }

    private var groups: [Group] = []
    /// Each transaction's payload, where its last fragment is, its number.
    private var payloads: [(bytes: [UInt8], position: LogPosition, transaction: Int)] = []
    /// Where each generation filed was read from (for errors).
    private var paths: [UInt32: String] = [:]
    private var pages: [UInt64: Page] = [:]

    var isEmpty: Bool { groups.isEmpty }
    /// About the memory the batch holds: payloads, groups, pages.
    private(set) var bytes = 0

    /// About what a page's state costs (the object, its entry in `pages`).
    static let pageBytes = 160

    func notePath(_ path: String, generation: UInt32) { paths[generation] = path }

    /// "FILE offset N", as errors name a place in the log: where group `seq`'s transaction ends.
    func place(_ seq: Int) -> String {
        let p = payloads[Int(groups[seq].payload)].position
        return "\(paths[p.generation] ?? "generation \(p.generation)") offset \(p.offset)"
    }

    /// Files the page groups of a transaction's payload (checked as `LogTransaction.decode`
    /// checks it). `database` is asked about each group's database first; `create` is called
    /// for each database the transaction creates, in its place among the groups.
    func file(_ payload: [UInt8], transaction: Int, position: LogPosition, place: String, database: (UInt16) throws -> Void,
              create: (_ dbid: UInt16, _ pageSize: UInt32, _ signature: Signature, _ name: String) throws -> Void) throws {
        let kept = keep(payload, position: position, transaction: transaction)
        _ = try payload.withUnsafeBytes { p in
            try LogTransaction.walk(p, where: place, page: { dbid, pgno, before, after, count, r in
                try database(dbid)
                let seq = add(dbid: dbid, pgno: pgno, before: before, after: after, payload: kept, changesAt: r.offset, count: count)
                for k in 0..<count {
                    let c = try PageChange.decode(&r)
                    if k == 0 { groups[seq].whole = c.definesWholePage }
                    if case .move(let source, _) = c { addMove(dbid: dbid, source: source, seq: seq, pgno: pgno) }
                }
            }, create: { op in
                if case .createDatabase(let dbid, let pageSize, let sig, let name) = op { try create(dbid, pageSize, sig, name) }
            })
        }
    }

    /// Keeps a transaction's payload; its groups are then filed with the number returned.
    private func keep(_ payload: [UInt8], position: LogPosition, transaction: Int) -> Int32 {
        payloads.append((payload, position, transaction))
        bytes += payload.capacity + MemoryLayout<([UInt8], LogPosition, Int)>.stride
        return Int32(payloads.count - 1)
    }

    /// The page's state if the batch has it (a move's source may have no group in the batch).
    func existing(_ dbid: UInt16, _ pgno: UInt32) -> Page? { pages[PageFrame.key(dbid, pgno)] }

    private func page(_ dbid: UInt16, _ pgno: UInt32) -> Page {
        let key = PageFrame.key(dbid, pgno)
        if let p = pages[key] { return p }
        let p = Page(dbid: dbid, pgno: pgno)
        pages[key] = p
        bytes += Self.pageBytes
        return p
    }

    /// Files a page group whose `count` changes start at `changesAt` in payload `payload`;
    /// returns its place in log order.
    private func add(dbid: UInt16, pgno: UInt32, before: UInt64, after: UInt64, payload: Int32, changesAt: Int, count: Int) -> Int {
        let seq = groups.count
        groups.append(Group(before: before, after: after, payload: payload, changesAt: Int32(changesAt), count: Int32(count)))
        bytes += MemoryLayout<Group>.stride
        let p = page(dbid, pgno)
        if p.last >= 0 { groups[Int(p.last)].nextInPage = Int32(seq) } else { p.next = Int32(seq) }
        p.last = Int32(seq)
        return seq
    }

    /// Notes that group `seq`, of page `pgno`, takes cells from page `source` (a move).
    private func addMove(dbid: UInt16, source: UInt32, seq: Int, pgno: UInt32) {
        groups[seq].moves = true
        page(dbid, source).takers.append((Int32(seq), page(dbid, pgno)))
        bytes += 32
    }

    /// Whether group `seq`'s first change defines the whole page.
    func definesWholePage(_ seq: Int) -> Bool { groups[seq].whole }

    /// The changes of group `seq`, decoded from its transaction's payload.
    func changes(of seq: Int) throws -> [PageChange] {
        let g = groups[seq]
        return try payloads[Int(g.payload)].bytes.withUnsafeBytes { p in
            var r = ByteReader(p, corrupt: LogTransaction.malformed(place(seq)))
            r.offset = Int(g.changesAt)
            var changes: [PageChange] = []
            changes.reserveCapacity(Int(g.count))
            for _ in 0..<g.count { changes.append(try PageChange.decode(&r)) }
            return changes
        }
    }

    /// Applies every group, page by page in page order, as described above: `prepare` first
    /// sees the pages in that order (to read ahead), `apply` does one group, `endPage` follows
    /// each page in page order (with the pages its moves needed). Empties the batch, also when
    /// `apply` throws.
    ///
    /// A page whose next group belongs to the transaction of the group just applied is in
    /// the middle of that transaction: its dbtime already says the transaction is applied
    /// (each group stamps it), so written now and found after a crash, the rest of the
    /// transaction's changes to it would be skipped. `hold(page, true)` is called when a page
    /// enters that state and `hold(page, false)` when it leaves it; the caller keeps such a
    /// page from being written in between. A batch holds whole transactions, so none is held
    /// when `run` returns.
    func run(prepare: ([Page]) -> Void = { _ in }, _ apply: (Page, Work) throws -> Void,
             hold: (Page, Bool) -> Void = { _, _ in }, endPage: () throws -> Void) throws {
        defer { groups.removeAll(); payloads.removeAll(); paths.removeAll(); pages.removeAll(); bytes = 0 }
        let order = pages.keys.sorted().map { pages[$0]! }
        prepare(order)
        for top in order {
            // Work to do before the top page is done: (page, apply its groups before seq).
            var stack: [(page: Page, before: Int)] = [(top, Int.max)]
            while let (p, limit) = stack.last {
                guard p.next >= 0, Int(p.next) < limit else {
                    stack.removeLast()
                    continue
                }
                let seq = Int(p.next)
                // A move that takes this page's cells before its next change goes first.
                if p.nextTaker < p.takers.count, Int(p.takers[p.nextTaker].seq) < seq {
                    let t = p.takers[p.nextTaker]
                    p.nextTaker += 1
                    stack.append((t.page, Int(t.seq) + 1))
                    continue
                }
                let g = groups[seq]
                // A move's source is brought up to the move first.
                let changes = g.moves ? try self.changes(of: seq) : nil
                if let changes, let s = unreadySource(changes, before: seq, in: p.dbid) {
                    stack.append((s, seq))
                    continue
                }
                try apply(p, Work(seq: seq, transaction: payloads[Int(g.payload)].transaction, before: g.before, after: g.after,
                                  whole: g.whole, changes: changes))
                p.next = g.nextInPage
                let open = p.next >= 0 && groups[Int(p.next)].payload == g.payload
                if open != p.held {
                    p.held = open
                    hold(p, open)
                }
            }
            try endPage()
        }
    }

    /// A page `changes` moves cells from whose groups before `seq` are not all applied yet.
    private func unreadySource(_ changes: [PageChange], before seq: Int, in dbid: UInt16) -> Page? {
        for case .move(let source, _) in changes {
            if let s = pages[PageFrame.key(dbid, source)], s.next >= 0, Int(s.next) < seq { return s }
        }
        return nil
    }
}
