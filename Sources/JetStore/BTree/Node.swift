#if canImport(Glibc)
import Glibc
#endif

/// Slotted-page node layout for the B+tree.
///
/// Slots (u16 cell offsets, in key order) follow the page header; cells grow down from the
/// end of the page.
/// ```
/// leaf cell:   u16 keyLength, u8 flags (1 = value in overflow pages), u8 0, u32 valueLength,
///              key, then the value or (overflow) the u32 first overflow page
/// branch cell: u16 keyLength, u16 0, u32 child, key
/// ```
/// In a branch, child i holds the keys ≥ key i and < key i+1; cell 0's key is not
/// consulted (it stands for "everything below key 1").
enum Node {
    static let cellHeader = 8
    static let overflowFlag: UInt8 = 1

    @inline(__always)
    static func compare(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let n = min(a.count, b.count)
        if n > 0 {
            let c = memcmp(a.baseAddress!, b.baseAddress!, n)
            if c != 0 { return Int(c) }
        }
        return a.count - b.count
    }

    static func corrupt(_ f: PageFrame, _ db: DatabaseFile, _ what: String) -> JetError {
        JetError(.databaseCorrupted, "page \(f.pgno) of \(db.path) is inconsistent (\(what)); check the instance's pages and restore from a backup")
    }

    /// Offset of cell `i`, bounds-checked.
    @inline(__always)
    static func cellOffset(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws -> Int {
        let o = Int(f.buffer.u16(PageFormat.headerSize + 2 * i))
        guard o >= PageFormat.headerSize + 2 * f.count, o + cellHeader <= db.pageSize else {
            throw corrupt(f, db, "cell \(i) at offset \(o)")
        }
        return o
    }

    @inline(__always)
    static func key(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws -> UnsafeRawBufferPointer {
        let o = try cellOffset(f, i, db)
        let kl = Int(f.buffer.u16(o))
        guard o + cellHeader + kl <= db.pageSize else { throw corrupt(f, db, "key of cell \(i)") }
        return UnsafeRawBufferPointer(rebasing: f.bytes[(o + cellHeader)..<(o + cellHeader + kl)])
    }

    static func child(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws -> UInt32 {
        let o = try cellOffset(f, i, db)
        let c = f.buffer.u32(o + 4)
        guard c >= PageFormat.firstDataPage, c < db.header.pageCount else { throw corrupt(f, db, "child \(c) of cell \(i)") }
        return c
    }

    /// Size of the cell at `i`.
    static func cellSize(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws -> Int {
        let o = try cellOffset(f, i, db)
        let kl = Int(f.buffer.u16(o))
        var size = cellHeader + kl
        if f.type == .leaf {
            size += (f.buffer[o + 2] & overflowFlag) != 0 ? 4 : Int(f.buffer.u32(o + 4))
        }
        guard o + size <= db.pageSize else { throw corrupt(f, db, "size of cell \(i)") }
        return size
    }

    static func cellBytes(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws -> [UInt8] {
        let o = try cellOffset(f, i, db)
        let n = try cellSize(f, i, db)
        return [UInt8](f.bytes[o..<(o + n)])
    }

    /// Binary search: index of the first cell with key ≥ `key`, and whether it is equal.
    static func lowerBound(_ f: PageFrame, _ key: UnsafeRawBufferPointer, _ db: DatabaseFile) throws -> (Int, Bool) {
        var lo = 0, hi = f.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if try compare(Node.key(f, mid, db), key) < 0 { lo = mid + 1 } else { hi = mid }
        }
        let found = try lo < f.count && compare(Node.key(f, lo, db), key) == 0
        return (lo, found)
    }

    /// Branch: the child to follow for `key` (last cell with key ≤ `key`, or cell 0).
    static func childIndex(_ f: PageFrame, _ key: UnsafeRawBufferPointer, _ db: DatabaseFile) throws -> Int {
        guard f.count > 0 else { throw corrupt(f, db, "empty branch") }
        var lo = 1, hi = f.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if try compare(Node.key(f, mid, db), key) <= 0 { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }

    static func freeSpace(_ f: PageFrame) -> Int {
        f.cellStart - (PageFormat.headerSize + 2 * f.count)
    }

    /// Inserts a prepared cell at slot `i`; false if it does not fit even after compaction.
    static func insertCell(_ f: PageFrame, _ i: Int, _ cell: [UInt8], _ db: DatabaseFile) throws -> Bool {
        let need = cell.count + 2
        if need > freeSpace(f) {
            guard need <= freeSpace(f) + f.fragmented else { return false }
            try compact(f, db)
        }
        let start = f.cellStart - cell.count
        cell.withUnsafeBytes { f.copyIn($0, at: start) }
        let slots = PageFormat.headerSize
        f.move(from: slots + 2 * i, to: slots + 2 * (i + 1), count: 2 * (f.count - i))
        f.setU16(slots + 2 * i, UInt16(start))
        f.setU16(PageFormat.countOffset, UInt16(f.count + 1))
        f.setU16(PageFormat.cellStartOffset, UInt16(start))
        return true
    }

    static func removeCell(_ f: PageFrame, _ i: Int, _ db: DatabaseFile) throws {
        let size = try cellSize(f, i, db)
        let o = try cellOffset(f, i, db)
        let slots = PageFormat.headerSize
        f.move(from: slots + 2 * (i + 1), to: slots + 2 * i, count: 2 * (f.count - i - 1))
        f.setU16(PageFormat.countOffset, UInt16(f.count - 1))
        f.zero((slots + 2 * f.count)..<(slots + 2 * f.count + 2))
        if o == f.cellStart {
            f.setU16(PageFormat.cellStartOffset, UInt16(o + size))
        } else {
            f.setU16(PageFormat.fragmentedOffset, UInt16(f.fragmented + size))
        }
        f.zero(o..<(o + size))
    }

    /// Rewrites the page with `cells` (in order), packed at the end, free space zeroed.
    static func rewrite(_ f: PageFrame, _ cells: ArraySlice<[UInt8]>, type: PageFormat.PageType, _ db: DatabaseFile) {
        let size = db.pageSize
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { scratch.deallocate() }
        scratch.initializeMemory(as: UInt8.self, repeating: 0)
        scratch.copyMemory(from: UnsafeRawBufferPointer(rebasing: f.bytes[0..<PageFormat.headerSize]))
        scratch[PageFormat.typeOffset] = type.rawValue
        var top = size
        for (k, cell) in cells.enumerated() {
            top -= cell.count
            cell.withUnsafeBytes { (scratch.baseAddress! + top).copyMemory(from: $0.baseAddress!, byteCount: cell.count) }
            scratch.setU16(PageFormat.headerSize + 2 * k, UInt16(top))
        }
        scratch.setU16(PageFormat.countOffset, UInt16(cells.count))
        scratch.setU16(PageFormat.cellStartOffset, UInt16(top))
        scratch.setU16(PageFormat.fragmentedOffset, 0)
        // Log only what differs from the page as it was.
        var i = 0
        let old = f.bytes
        while i < size {
            if old[i] == scratch[i] { i += 1; continue }
            var last = i, j = i + 1
            while j < size && j - last <= 8 {
                if old[j] != scratch[j] { last = j }
                j += 1
            }
            f.copyIn(UnsafeRawBufferPointer(rebasing: scratch[i...last]), at: i)
            i = last + 1
        }
    }

    static func compact(_ f: PageFrame, _ db: DatabaseFile) throws {
        var cells: [[UInt8]] = []
        cells.reserveCapacity(f.count)
        for i in 0..<f.count { cells.append(try cellBytes(f, i, db)) }
        rewrite(f, cells[...], type: f.type ?? .leaf, db)
    }

    static func leafCell(key: UnsafeRawBufferPointer, valueLength: Int, inline value: UnsafeRawBufferPointer?, overflow: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: cellHeader + key.count + (value?.count ?? 4))
        w.u16(UInt16(key.count))
        w.u8(value == nil ? overflowFlag : 0); w.u8(0)
        w.u32(UInt32(valueLength))
        w.raw(key)
        if let v = value { w.raw(v) } else { w.u32(overflow) }
        return w.bytes
    }

    static func branchCell(key: UnsafeRawBufferPointer, child: UInt32) -> [UInt8] {
        var w = ByteWriter(capacity: cellHeader + key.count)
        w.u16(UInt16(key.count)); w.u16(0); w.u32(child)
        w.raw(key)
        return w.bytes
    }
}
