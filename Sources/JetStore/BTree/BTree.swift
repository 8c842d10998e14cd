/// The ordered key-value B+tree of one database, over the page cache.
/// Called only under the engine lock, inside an operation (`PageCache.endOperation`
/// unpins what it fetched). Every change of a page is a `PageChange` made through
/// `PageFrame.log`, so the commit logs exactly the changes made (physiological redo).
struct BTree {
    let db: DatabaseFile
    let cache: PageCache
    /// Splits log the cells they move (`PageChange.format`) instead of naming the page they
    /// come from (`PageChange.move`): while a full backup copies the database files, a split's
    /// two pages may be copied at different times, and the new page could not be rebuilt from
    /// an old page copied after the split.
    var splitsCarryCells = false

    static let maxKeyLength = 255
    static let maxValueLength = 16 * 1024 * 1024

    var dbid: UInt16 { db.dbid }

    /// Largest cell kept inline in a leaf: a leaf holds at least four.
    var maxInlineCell: Int { Node.capacity(db) / 4 - 2 }
    var overflowCapacity: Int { Node.capacity(db) }

    private func change(_ f: PageFrame) { cache.beginChange(f) }

    /// Makes and logs a change of a page already in the transaction (`source`: the page a
    /// `move` takes its cells from).
    private func log(_ f: PageFrame, _ c: PageChange, source: PageFrame? = nil) throws {
        do {
            try f.log(c, source: source, into: cache.redo)
        } catch let m as PageChange.Misfit {
            throw Node.corrupt(f, db, m.what)
        }
    }

    // MARK: Page allocation

    /// A page for new content, from the free list or past the end of the file, in the
    /// transaction. The caller's first change of it defines the whole page (`definesWholePage`).
    /// The header's allocation fields change in memory; the commit logs them.
    private func allocate() throws -> PageFrame {
        let f: PageFrame
        if db.header.freeListHead != 0 {
            let pgno = db.header.freeListHead
            guard pgno >= PageFormat.firstDataPage, pgno < db.header.pageCount, db.header.freeCount > 0 else {
                throw JetError(.databaseCorrupted, "the free list of \(db.path) names page \(pgno) (\(db.header.freeCount) free); check the instance's pages and restore from a backup")
            }
            f = try cache.fetch(dbid, pgno)
            guard f.type == .free else { throw Node.corrupt(f, db, "free list names a page in use") }
            db.header.freeListHead = f.next
            db.header.freeCount -= 1
        } else {
            let pgno = db.header.pageCount
            db.header.pageCount += 1
            f = try cache.create(dbid, pgno)
        }
        change(f)
        return f
    }

    private func free(_ f: PageFrame) throws {
        change(f)
        try log(f, .free(next: db.header.freeListHead))
        db.header.freeListHead = f.pgno
        db.header.freeCount += 1
    }

    // MARK: Overflow chains

    private func writeOverflow(_ value: UnsafeRawBufferPointer) throws -> UInt32 {
        let cap = overflowCapacity
        let n = (value.count + cap - 1) / cap
        var frames: [PageFrame] = []
        for _ in 0..<n { frames.append(try allocate()) }
        for (k, f) in frames.enumerated() {
            let lo = k * cap, hi = min(value.count, lo + cap)
            try log(f, .overflow(next: k + 1 < n ? frames[k + 1].pgno : 0, bytes: [UInt8](value[lo..<hi])))
        }
        return frames[0].pgno
    }

    private func readOverflow(first: UInt32, length: Int) throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(length)
        var pgno = first
        var hops = 0
        while pgno != 0 {
            guard pgno >= PageFormat.firstDataPage, pgno < db.header.pageCount, hops <= db.header.pageCount else {
                throw JetError(.databaseCorrupted, "overflow chain of \(db.path) names page \(pgno); "
                    + "check the instance's pages and restore from a backup")
            }
            let f = try cache.fetch(dbid, pgno)
            guard f.type == .overflow, f.used <= overflowCapacity else { throw Node.corrupt(f, db, "not an overflow page") }
            out.append(contentsOf: f.bytes[PageFormat.headerSize..<(PageFormat.headerSize + f.used)])
            pgno = f.next
            hops += 1
        }
        guard out.count == length else {
            throw JetError(.databaseCorrupted, "a value in \(db.path) should be \(length) bytes, its overflow chain holds \(out.count)")
        }
        return out
    }

    private func freeOverflow(first: UInt32) throws {
        var pgno = first
        var hops = 0
        while pgno != 0 {
            guard pgno >= PageFormat.firstDataPage, pgno < db.header.pageCount, hops <= db.header.pageCount else {
                throw JetError(.databaseCorrupted, "overflow chain of \(db.path) names page \(pgno)")
            }
            let f = try cache.fetch(dbid, pgno)
            guard f.type == .overflow else { throw Node.corrupt(f, db, "not an overflow page") }
            pgno = f.next
            try free(f)
            hops += 1
        }
    }

    // MARK: Reading

    /// Descends to the leaf for `key`, returning the path of (branch, child index).
    private func descend(_ key: UnsafeRawBufferPointer) throws -> (leaf: PageFrame, path: [(PageFrame, Int)]) {
        var f = try cache.fetch(dbid, db.header.rootPage)
        var path: [(PageFrame, Int)] = []
        var depth = 0
        while f.type == .branch {
            let i = try Node.childIndex(f, key, db)
            path.append((f, i))
            f = try cache.fetch(dbid, try Node.child(f, i, db))
            depth += 1
            if depth > 64 { throw Node.corrupt(f, db, "tree deeper than 64 levels") }
        }
        guard f.type == .leaf else { throw Node.corrupt(f, db, "expected a leaf or branch page, found type \(f.bytes[PageFormat.typeOffset])") }
        return (f, path)
    }

    private func value(_ f: PageFrame, _ i: Int) throws -> [UInt8] {
        let o = try Node.cellOffset(f, i, db)
        let kl = Int(f.buffer.u16(o))
        let vl = Int(f.buffer.u32(o + 4))
        let start = o + Node.cellHeader + kl
        if (f.buffer[o + 2] & Node.overflowFlag) != 0 {
            guard start + 4 <= db.pageSize else { throw Node.corrupt(f, db, "cell \(i)") }
            return try readOverflow(first: f.buffer.u32(start), length: vl)
        }
        guard start + vl <= db.pageSize else { throw Node.corrupt(f, db, "value of cell \(i)") }
        return [UInt8](f.bytes[start..<(start + vl)])
    }

    func get(_ key: UnsafeRawBufferPointer) throws -> [UInt8]? {
        let (leaf, _) = try descend(key)
        let (i, found) = try Node.lowerBound(leaf, key, db)
        return found ? try value(leaf, i) : nil
    }

    /// Records in key order, starting after `after` (or at the first key with `prefix`),
    /// until `limit` records or about `maxBytes` of them. `body` returns false to stop.
    func scan(after: [UInt8]?, prefix: [UInt8], limit: Int, maxBytes: Int, _ body: ([UInt8], [UInt8]) throws -> Void) throws -> Int {
        let start = after ?? prefix
        var (leaf, path) = try start.withUnsafeBytes { try descend($0) }
        var (i, found) = try start.withUnsafeBytes { try Node.lowerBound(leaf, $0, db) }
        if found && after != nil { i += 1 }
        var n = 0, bytes = 0
        while n < limit && bytes < maxBytes {
            if i >= leaf.count {
                // Next leaf: up the path to a branch with a child to the right, then leftmost down.
                var next: PageFrame?
                while let (b, ci) = path.popLast() {
                    if ci + 1 < b.count {
                        path.append((b, ci + 1))
                        var f = try cache.fetch(dbid, try Node.child(b, ci + 1, db))
                        while f.type == .branch {
                            path.append((f, 0))
                            f = try cache.fetch(dbid, try Node.child(f, 0, db))
                        }
                        guard f.type == .leaf else { throw Node.corrupt(f, db, "expected a leaf") }
                        next = f
                        break
                    }
                }
                guard let nl = next else { break }
                leaf = nl
                i = 0
                continue
            }
            let k = try Node.key(leaf, i, db)
            if !prefix.isEmpty {
                if k.count < prefix.count || Node.compare(UnsafeRawBufferPointer(rebasing: k[0..<prefix.count]), prefix.withUnsafeBytes { $0 }) != 0 {
                    break
                }
            }
            let key = [UInt8](k)
            let v = try value(leaf, i)
            try body(key, v)
            n += 1
            bytes += key.count + v.count
            i += 1
        }
        return n
    }

    // MARK: Writing

    /// Inserts or replaces; true if the key was there.
    @discardableResult
    func put(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool {
        let (leaf, path) = try descend(key)
        let (i, found) = try Node.lowerBound(leaf, key, db)
        change(leaf)
        // The old value's overflow pages are freed first, so the new value can reuse them.
        if found { try freeOverflowOf(leaf, i) }
        let cell: [UInt8]
        if Node.cellHeader + key.count + value.count <= maxInlineCell {
            cell = Node.leafCell(key: key, valueLength: value.count, inline: value, overflow: 0)
        } else {
            cell = Node.leafCell(key: key, valueLength: value.count, inline: nil, overflow: try writeOverflow(value))
        }
        if found {
            if try Node.fits(leaf, replacing: i, with: cell, db) {
                try log(leaf, .replace(slot: i, cell: cell))
                return true
            }
            try log(leaf, .delete(slot: i))
        } else if Node.fits(leaf, cell) {
            try log(leaf, .insert(slot: i, cell: cell))
            return false
        }
        try split(leaf, insert: cell, at: i, path: path)
        return found
    }

    /// Frees the overflow pages of leaf cell `i`, if its value lives there.
    private func freeOverflowOf(_ leaf: PageFrame, _ i: Int) throws {
        let o = try Node.cellOffset(leaf, i, db)
        if (leaf.buffer[o + 2] & Node.overflowFlag) != 0 {
            let kl = Int(leaf.buffer.u16(o))
            guard o + Node.cellHeader + kl + 4 <= db.pageSize else { throw Node.corrupt(leaf, db, "cell \(i)") }
            try freeOverflow(first: leaf.buffer.u32(o + Node.cellHeader + kl))
        }
    }

    /// Splits a full node while inserting `cell` at `at`, then inserts the separator into the
    /// parent (splitting it too if needed, up to a new root). Logged as ESE logs a split: the
    /// new page made from the old page's cells from the split point on (named, not copied:
    /// the log holds about half a page less per split), then the old page keeping its first
    /// cells; the new page must then reach the disk no later than the old one
    /// (`PageCache.splitMoved`). An append at the right edge moves nothing, and while a full
    /// backup copies the files the cells are logged themselves (`splitsCarryCells`): the new
    /// page is then self-contained.
    private func split(_ node: PageFrame, insert cell: [UInt8], at: Int, path: [(PageFrame, Int)]) throws {
        var path = path
        var node = node
        var cell = cell
        var at = at
        while true {
            let type = node.type ?? .leaf
            var cells: [[UInt8]] = []
            cells.reserveCapacity(node.count + 1)
            for k in 0..<node.count { cells.append(try Node.cellBytes(node, k, db)) }
            cells.insert(cell, at: at)
            // Appending at the right edge (sequential keys): leave the left page full.
            var m: Int
            if at == cells.count - 1 && cells.count > 2 {
                m = cells.count - 1
            } else {
                let total = cells.reduce(0) { $0 + $1.count + 2 }
                var acc = 0
                m = 0
                while m < cells.count - 1 && acc + cells[m].count + 2 <= total / 2 { acc += cells[m].count + 2; m += 1 }
                m = max(1, min(m, cells.count - 1))
            }
            let right = try allocate()
            if splitsCarryCells || m == cells.count - 1 && at == m {
                try log(right, .format(type: type, cells: Array(cells[m...])))
            } else if at < m {
                // cells[m...] are the node's own from m - 1 on.
                try log(right, .move(source: node.pgno, from: m - 1), source: node)
                cache.splitMoved(from: node, to: right)
            } else {
                // The node's own from m on, with the new cell among them.
                try log(right, .move(source: node.pgno, from: m), source: node)
                try log(right, .insert(slot: at - m, cell: cell))
                cache.splitMoved(from: node, to: right)
            }
            if at < m {
                try log(node, .keep(count: m - 1))
                try log(node, .insert(slot: at, cell: cell))
            } else {
                try log(node, .keep(count: m))
            }
            let sepKey = cells[m].withUnsafeBytes { b in
                [UInt8](b[Node.cellHeader..<(Node.cellHeader + Int(b.u16(0)))])
            }
            let sepCell = sepKey.withUnsafeBytes { Node.branchCell(key: $0, child: right.pgno) }
            guard let (parent, ci) = path.popLast() else {
                // New root: its cell 0 stands for "everything below sepKey".
                let root = try allocate()
                let left = [UInt8]().withUnsafeBytes { Node.branchCell(key: $0, child: node.pgno) }
                try log(root, .format(type: .branch, cells: [left, sepCell]))
                db.header.rootPage = root.pgno
                return
            }
            change(parent)
            if Node.fits(parent, sepCell) {
                try log(parent, .insert(slot: ci + 1, cell: sepCell))
                return
            }
            node = parent
            cell = sepCell
            at = ci + 1
        }
    }

    /// Deletes `key`; false if it was not there. An emptied leaf leaves the tree and its page
    /// goes to the free list; a leaf left less than a quarter full is merged with a sibling
    /// (`mergeIfRoom`); a root branch with a single child gives way to it.
    func delete(_ key: UnsafeRawBufferPointer) throws -> Bool {
        let (leaf, path) = try descend(key)
        let (i, found) = try Node.lowerBound(leaf, key, db)
        guard found else { return false }
        change(leaf)
        try freeOverflowOf(leaf, i)
        try log(leaf, .delete(slot: i))
        guard let (parent, ci) = path.last, parent.count > 1 else { return true }
        if leaf.count == 0 {
            change(parent)
            try log(parent, .delete(slot: ci))
            try free(leaf)
        } else if Node.usedSpace(leaf, db) > Node.capacity(db) / 4 {
            return true
        } else if try !mergeIfRoom(leaf, parent: parent, at: ci) {
            return true
        }
        if parent.pgno == db.header.rootPage && parent.count == 1 {
            db.header.rootPage = try Node.child(parent, 0, db)
            try free(parent)
        }
        return true
    }

    /// Merges leaf `leaf`, child `ci` of `parent`, with its left sibling (its right one if it
    /// is the first child) when the two fit in one page with a quarter of it still free, so
    /// the next inserts do not split it again: the right page's cells are appended to the
    /// left page, the right page leaves `parent` and goes to the free list. Each moved cell is
    /// logged with its bytes (an insert), as ESE logs the nodes a merge moves: redo needs no
    /// other page, so no write order follows from a merge, and a copy of either page taken
    /// at any time during an online backup is brought forward by redo. Branch pages are not
    /// merged (a branch page leaves the tree only when the root collapses). Returns whether
    /// it merged.
    private func mergeIfRoom(_ leaf: PageFrame, parent: PageFrame, at ci: Int) throws -> Bool {
        let l = ci > 0 ? ci - 1 : 0
        let left = l == ci ? leaf : try cache.fetch(dbid, try Node.child(parent, l, db))
        let right = l == ci ? try cache.fetch(dbid, try Node.child(parent, l + 1, db)) : leaf
        for f in [left, right] where f.type != .leaf {
            throw Node.corrupt(f, db, "a sibling of leaf \(leaf.pgno) under branch \(parent.pgno) is not a leaf")
        }
        guard Node.usedSpace(left, db) + Node.usedSpace(right, db) <= Node.capacity(db) * 3 / 4 else { return false }
        change(left)
        change(right)
        for k in 0..<right.count {
            try log(left, .insert(slot: left.count, cell: try Node.cellBytes(right, k, db)))
        }
        change(parent)
        try log(parent, .delete(slot: l + 1))
        try free(right)
        return true
    }
}
