/// Making a `PageChange` on a page's bytes: the one code path for the change as it is first
/// made (`PageFrame.log`) and as redo makes it again, so both give the same bytes from the
/// same page version. Every offset is checked: a change that does not fit the page it is
/// applied to throws `PageChange.Misfit`, never traps.
extension PageChange {
    struct Misfit: Error {
        let what: String
    }

    /// `source`: for `move`, the bytes of the page it names, as that page is now (a split's
    /// old page before it drops the cells; nil where the caller has none, a misfit).
    func apply(to p: UnsafeMutableRawBufferPointer, pgno: UInt32, source: UnsafeMutableRawBufferPointer? = nil) throws {
        switch self {
        case .insert(let slot, let cell):
            try Self.insertCell(p, slot, cell)
        case .delete(let slot):
            try Self.removeCell(p, slot)
        case .replace(let slot, let cell):
            try Self.removeCell(p, slot)
            try Self.insertCell(p, slot, cell)
        case .format(let type, let cells):
            Self.blank(p, pgno: pgno, type: type)
            try Self.rewrite(p, cells[...])
        case .keep(let n):
            guard n <= Self.count(p) else { throw Misfit(what: "keeps \(n) of \(Self.count(p)) cells") }
            try Self.rewrite(p, try Self.cells(p)[0..<n])
        case .overflow(let next, let bytes):
            guard PageFormat.headerSize + bytes.count <= p.count else { throw Misfit(what: "overflow of \(bytes.count) bytes") }
            Self.blank(p, pgno: pgno, type: .overflow)
            p.setU32(PageFormat.nextOffset, next)
            p.setU32(PageFormat.usedOffset, UInt32(bytes.count))
            bytes.withUnsafeBytes { (p.baseAddress! + PageFormat.headerSize).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        case .free(let next):
            Self.blank(p, pgno: pgno, type: .free)
            p.setU32(PageFormat.nextOffset, next)
        case .allocation(let pc, let root, let head, let n):
            guard p[PageFormat.typeOffset] == PageFormat.PageType.header.rawValue else { throw Misfit(what: "allocation on a page that is no header") }
            p.setU32(DatabaseHeader.oPageCount, pc)
            p.setU32(DatabaseHeader.oRoot, root)
            p.setU32(DatabaseHeader.oFreeHead, head)
            p.setU32(DatabaseHeader.oFreeCount, n)
        case .header(let bytes):
            guard PageFormat.headerSize + bytes.count <= p.count else { throw Misfit(what: "header of \(bytes.count) bytes") }
            bytes.withUnsafeBytes { (p.baseAddress! + PageFormat.headerSize).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        case .move(let from, let first):
            guard let src = source, from != pgno, src.count == p.count else { throw Misfit(what: "move from page \(from), which is not at hand") }
            guard let type = PageFormat.PageType(rawValue: src[PageFormat.typeOffset]), type == .leaf || type == .branch else {
                throw Misfit(what: "move from page \(from), which is no leaf or branch")
            }
            guard first <= Self.count(src) else { throw Misfit(what: "move of cells from slot \(first) of \(Self.count(src))") }
            let cells = try Self.cells(src, from: first)
            Self.blank(p, pgno: pgno, type: type)
            try Self.rewrite(p, cells[...])
        }
    }

    /// Stamps the page with the dbtime of the change that made it (page 0 also in its header field).
    static func stamp(_ p: UnsafeMutableRawBufferPointer, pgno: UInt32, dbtime: UInt64) {
        p.setU64(PageFormat.dbtimeOffset, dbtime)
        if pgno == PageFormat.headerPage { p.setU64(DatabaseHeader.oDbtime, dbtime) }
    }

    // MARK: Slotted pages on raw bytes

    @inline(__always) static func count(_ p: UnsafeMutableRawBufferPointer) -> Int { Int(p.u16(PageFormat.countOffset)) }
    @inline(__always) static func cellStart(_ p: UnsafeMutableRawBufferPointer) -> Int { Int(p.u16(PageFormat.cellStartOffset)) }
    @inline(__always) static func fragmented(_ p: UnsafeMutableRawBufferPointer) -> Int { Int(p.u16(PageFormat.fragmentedOffset)) }

    static func freeSpace(_ p: UnsafeMutableRawBufferPointer) -> Int {
        cellStart(p) - (PageFormat.headerSize + 2 * count(p))
    }

    /// Bytes an insert of `cellSize` may use: free space plus what compaction would win.
    static func room(_ p: UnsafeMutableRawBufferPointer) -> Int { freeSpace(p) + fragmented(p) }

    static func cellOffset(_ p: UnsafeMutableRawBufferPointer, _ i: Int) throws -> Int {
        guard i >= 0, i < count(p) else { throw Misfit(what: "slot \(i) of \(count(p))") }
        let o = Int(p.u16(PageFormat.headerSize + 2 * i))
        guard o >= PageFormat.headerSize + 2 * count(p), o + Node.cellHeader <= p.count else { throw Misfit(what: "cell \(i) at offset \(o)") }
        return o
    }

    static func cellSize(_ p: UnsafeMutableRawBufferPointer, at o: Int) throws -> Int {
        let kl = Int(p.u16(o))
        var size = Node.cellHeader + kl
        if p[PageFormat.typeOffset] == PageFormat.PageType.leaf.rawValue {
            size += (p[o + 2] & Node.overflowFlag) != 0 ? 4 : Int(p.u32(o + 4))
        }
        guard o + size <= p.count else { throw Misfit(what: "cell of \(size) bytes at offset \(o)") }
        return size
    }

    /// The page's cells from slot `first` on, each copied out.
    static func cells(_ p: UnsafeMutableRawBufferPointer, from first: Int = 0) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        out.reserveCapacity(max(0, count(p) - first))
        for i in first..<max(first, count(p)) {
            let o = try cellOffset(p, i)
            out.append([UInt8](p[o..<(o + (try cellSize(p, at: o)))]))
        }
        return out
    }

    static func insertCell(_ p: UnsafeMutableRawBufferPointer, _ i: Int, _ cell: [UInt8]) throws {
        let n = count(p)
        guard i >= 0, i <= n, p[PageFormat.typeOffset] == PageFormat.PageType.leaf.rawValue
                || p[PageFormat.typeOffset] == PageFormat.PageType.branch.rawValue else {
            throw Misfit(what: "insert at slot \(i) of \(n)")
        }
        let need = cell.count + 2
        if need > freeSpace(p) {
            guard need <= room(p) else { throw Misfit(what: "a cell of \(cell.count) bytes in \(room(p)) free") }
            try rewrite(p, try cells(p)[...])
        }
        let start = cellStart(p) - cell.count
        cell.withUnsafeBytes { (p.baseAddress! + start).copyMemory(from: $0.baseAddress!, byteCount: cell.count) }
        let slots = PageFormat.headerSize
        if i < n {
            (p.baseAddress! + slots + 2 * (i + 1)).copyMemory(from: p.baseAddress! + slots + 2 * i, byteCount: 2 * (n - i))
        }
        p.setU16(slots + 2 * i, UInt16(start))
        p.setU16(PageFormat.countOffset, UInt16(n + 1))
        p.setU16(PageFormat.cellStartOffset, UInt16(start))
    }

    static func removeCell(_ p: UnsafeMutableRawBufferPointer, _ i: Int) throws {
        let o = try cellOffset(p, i)
        let size = try cellSize(p, at: o)
        let n = count(p)
        let slots = PageFormat.headerSize
        if i + 1 < n {
            (p.baseAddress! + slots + 2 * i).copyMemory(from: p.baseAddress! + slots + 2 * (i + 1), byteCount: 2 * (n - i - 1))
        }
        p.setU16(PageFormat.countOffset, UInt16(n - 1))
        p.setU16(slots + 2 * (n - 1), 0)
        if o == cellStart(p) {
            p.setU16(PageFormat.cellStartOffset, UInt16(o + size))
        } else {
            p.setU16(PageFormat.fragmentedOffset, UInt16(fragmented(p) + size))
        }
        (p.baseAddress! + o).initializeMemory(as: UInt8.self, repeating: 0, count: size)
    }

    /// Lays `cells` out packed at the end of the page, slots in order, free space zeroed;
    /// the page header but for count, cell start and fragmented bytes stays.
    static func rewrite(_ p: UnsafeMutableRawBufferPointer, _ cells: ArraySlice<[UInt8]>) throws {
        let size = p.count
        let total = cells.reduce(0) { $0 + $1.count + 2 }
        guard PageFormat.headerSize + total <= size else { throw Misfit(what: "\(cells.count) cells of \(total) bytes") }
        (p.baseAddress! + PageFormat.headerSize).initializeMemory(as: UInt8.self, repeating: 0, count: size - PageFormat.headerSize)
        var top = size
        for (k, cell) in cells.enumerated() {
            top -= cell.count
            cell.withUnsafeBytes { (p.baseAddress! + top).copyMemory(from: $0.baseAddress!, byteCount: cell.count) }
            p.setU16(PageFormat.headerSize + 2 * k, UInt16(top))
        }
        p.setU16(PageFormat.countOffset, UInt16(cells.count))
        p.setU16(PageFormat.cellStartOffset, UInt16(top))
        p.setU16(PageFormat.fragmentedOffset, 0)
    }

    /// An empty page of `type`: zeros but for its number, type and dbtime (kept: the commit
    /// stamps the new one).
    static func blank(_ p: UnsafeMutableRawBufferPointer, pgno: UInt32, type: PageFormat.PageType) {
        let dbtime = p.u64(PageFormat.dbtimeOffset)
        p.initializeMemory(as: UInt8.self, repeating: 0)
        p.setU64(PageFormat.dbtimeOffset, dbtime)
        p.setU32(PageFormat.pgnoOffset, pgno)
        p[PageFormat.typeOffset] = type.rawValue
        p.setU16(PageFormat.cellStartOffset, UInt16(truncatingIfNeeded: p.count))
    }
}
