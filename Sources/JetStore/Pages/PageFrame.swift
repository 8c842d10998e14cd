/// One cached page. Owned by the `PageCache`; touched only under the engine lock.
/// Its buffer lives exactly as long as the frame.
final class PageFrame {
    let dbid: UInt16
    let pgno: UInt32
    let buffer: UnsafeMutableRawBufferPointer
    /// Changed in memory since last written to the database file.
    var dirty = false
    /// Log end position of the last record that logged this page: the log must be durable
    /// up to here before the page may be written (write-ahead rule).
    var lastLoggedEnd: UInt64 = 0
    /// Pins: the page is in use by the running operation, or changed by the open transaction.
    var pins = 0
    /// Changed by the open transaction: byte ranges to log, and the dbtime it had before.
    var inTransaction = false
    var ranges: [Range<Int>] = []
    var baseDbtime: UInt64 = 0
    var referenced = true

    init(dbid: UInt16, pgno: UInt32, pageSize: Int) {
        self.dbid = dbid
        self.pgno = pgno
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { buffer.deallocate() }

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

    // MARK: Changes, each recorded as a byte range so the commit can log exactly them.

    func noteChange(_ r: Range<Int>) {
        guard !r.isEmpty else { return }
        // Keep ranges sorted and merged when they touch or lie within 16 bytes: each
        // range costs 4 bytes of record header.
        var lo = r.lowerBound, hi = r.upperBound
        var out: [Range<Int>] = []
        out.reserveCapacity(ranges.count + 1)
        var placed = false
        for x in ranges {
            if x.upperBound + 16 < lo {
                out.append(x)
            } else if hi + 16 < x.lowerBound {
                if !placed { out.append(lo..<hi); placed = true }
                out.append(x)
            } else {
                lo = min(lo, x.lowerBound); hi = max(hi, x.upperBound)
            }
        }
        if !placed { out.append(lo..<hi) }
        if out.count > 24 { out = [out.first!.lowerBound..<out.last!.upperBound] }
        ranges = out
    }

    func setU8(_ o: Int, _ v: UInt8) { buffer[o] = v; noteChange(o..<(o + 1)) }
    func setU16(_ o: Int, _ v: UInt16) { buffer.setU16(o, v); noteChange(o..<(o + 2)) }
    func setU32(_ o: Int, _ v: UInt32) { buffer.setU32(o, v); noteChange(o..<(o + 4)) }
    func setU64(_ o: Int, _ v: UInt64) { buffer.setU64(o, v); noteChange(o..<(o + 8)) }

    func copyIn(_ src: UnsafeRawBufferPointer, at o: Int) {
        guard src.count > 0 else { return }
        (buffer.baseAddress! + o).copyMemory(from: src.baseAddress!, byteCount: src.count)
        noteChange(o..<(o + src.count))
    }

    /// memmove inside the page.
    func move(from src: Int, to dst: Int, count n: Int) {
        guard n > 0, src != dst else { return }
        (buffer.baseAddress! + dst).copyMemory(from: buffer.baseAddress! + src, byteCount: n)
        noteChange(dst..<(dst + n))
    }

    func zero(_ r: Range<Int>) {
        guard !r.isEmpty else { return }
        (buffer.baseAddress! + r.lowerBound).initializeMemory(as: UInt8.self, repeating: 0, count: r.count)
        noteChange(r)
    }

    /// Formats the page as an empty page of `type` (the whole page is a change).
    func format(_ type: PageFormat.PageType, pageSize: Int) {
        let dbtime = self.dbtime
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        buffer.setU64(PageFormat.dbtimeOffset, dbtime)
        buffer.setU32(PageFormat.pgnoOffset, pgno)
        buffer[PageFormat.typeOffset] = type.rawValue
        buffer.setU16(PageFormat.cellStartOffset, UInt16(pageSize))
        noteChange(0..<pageSize)
    }
}
