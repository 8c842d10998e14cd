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

    /// Bytes a page holds for slots and cells.
    static func capacity(_ db: DatabaseFile) -> Int { db.pageSize - PageFormat.headerSize }

    /// Bytes of `f`'s slots and cells (its capacity less the free and fragmented bytes).
    static func usedSpace(_ f: PageFrame, _ db: DatabaseFile) -> Int {
        capacity(db) - freeSpace(f) - f.fragmented
    }

    static func freeSpace(_ f: PageFrame) -> Int {
        f.cellStart - (PageFormat.headerSize + 2 * f.count)
    }

    /// True if `cell` can be inserted (compacting the page if need be).
    static func fits(_ f: PageFrame, _ cell: [UInt8]) -> Bool {
        cell.count + 2 <= freeSpace(f) + f.fragmented
    }

    /// True if cell `i` can be replaced by `cell`: the old cell's bytes and slot come free first.
    static func fits(_ f: PageFrame, replacing i: Int, with cell: [UInt8], _ db: DatabaseFile) throws -> Bool {
        cell.count + 2 <= freeSpace(f) + f.fragmented + (try cellSize(f, i, db)) + 2
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
