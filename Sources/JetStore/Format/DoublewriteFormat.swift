/// The layout of the doublewrite file `edb.dw` (InnoDB's doublewrite buffer; see `Doublewrite`
/// for why it is correct). The file is a sequence of batches from offset 0, each starting at a
/// multiple of the page size: header pages, then the page copies.
/// ```
/// 0  8   magic "JETDW001"
/// 8  u32 format version
/// 12 u32 page size
/// 16 u64 epoch (random; every batch of one epoch carries it)
/// 24 u32 batch number in the epoch (0: the epoch's start, no pages)
/// 28 u32 count of page copies
/// 32 u32 header pages (the pages before the copies)
/// 36 u32 CRC32C of bytes [0, 36) and of the directory
/// 40     directory: count × (u16 database id, u16 0, u32 page number, u64 dbtime)
/// ```
/// Each copy is the page exactly as it goes to its database (sealed: checksum and number), so
/// a copy torn while the batch was written fails its own checksum, and one left from an earlier
/// batch in the same place fails the directory's page number or dbtime.
public enum DoublewriteFormat {
    public static let magic: [UInt8] = Array("JETDW001".utf8)
    public static let version: UInt32 = 1
    static let directoryOffset = 40
    static let entrySize = 16

    public struct Entry: Sendable, Equatable {
        public var dbid: UInt16
        public var pgno: UInt32
        public var dbtime: UInt64
        public init(dbid: UInt16, pgno: UInt32, dbtime: UInt64) { self.dbid = dbid; self.pgno = pgno; self.dbtime = dbtime }
    }

    public struct Header: Sendable, Equatable {
        public var pageSize: Int
        public var epoch: UInt64
        public var batch: UInt32
        public var entries: [Entry]

        public init(pageSize: Int, epoch: UInt64, batch: UInt32, entries: [Entry]) {
            self.pageSize = pageSize; self.epoch = epoch; self.batch = batch; self.entries = entries
        }

        public var headerPages: Int { DoublewriteFormat.headerPages(count: entries.count, pageSize: pageSize) }
        /// Bytes the batch takes in the file.
        public var size: Int { (headerPages + entries.count) * pageSize }

        /// The header pages, zero-padded.
        public func encode() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: headerPages * pageSize)
            out.withUnsafeMutableBytes { p in
                for (i, b) in DoublewriteFormat.magic.enumerated() { p[i] = b }
                p.setU32(8, DoublewriteFormat.version)
                p.setU32(12, UInt32(pageSize))
                p.setU64(16, epoch)
                p.setU32(24, batch)
                p.setU32(28, UInt32(entries.count))
                p.setU32(32, UInt32(headerPages))
                var o = DoublewriteFormat.directoryOffset
                for e in entries {
                    p.setU16(o, e.dbid); p.setU32(o + 4, e.pgno); p.setU64(o + 8, e.dbtime)
                    o += DoublewriteFormat.entrySize
                }
                p.setU32(36, DoublewriteFormat.checksum(p, count: entries.count))
            }
            return out
        }

        /// The header at the start of `p` (all its header pages: `length`), or nil if it is
        /// not a whole, valid one for `pageSize`.
        public static func decode(_ p: UnsafeRawBufferPointer, pageSize: Int) -> Header? {
            guard p.count >= DoublewriteFormat.directoryOffset, Array(p[0..<8]) == DoublewriteFormat.magic,
                  p.u32(8) == DoublewriteFormat.version, Int(p.u32(12)) == pageSize else { return nil }
            let count = Int(p.u32(28))
            guard count <= PageCache.maxBatch, Int(p.u32(32)) == DoublewriteFormat.headerPages(count: count, pageSize: pageSize),
                  DoublewriteFormat.directoryOffset + count * DoublewriteFormat.entrySize <= p.count,
                  p.u32(36) == DoublewriteFormat.checksum(p, count: count) else { return nil }
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            var o = DoublewriteFormat.directoryOffset
            for _ in 0..<count {
                entries.append(Entry(dbid: p.u16(o), pgno: p.u32(o + 4), dbtime: p.u64(o + 8)))
                o += DoublewriteFormat.entrySize
            }
            return Header(pageSize: pageSize, epoch: p.u64(16), batch: p.u32(24), entries: entries)
        }

        /// Header bytes a batch whose first header page is `p` takes (to read the rest), or nil.
        public static func length(_ p: UnsafeRawBufferPointer, pageSize: Int) -> Int? {
            guard p.count >= DoublewriteFormat.directoryOffset, Array(p[0..<8]) == DoublewriteFormat.magic,
                  Int(p.u32(12)) == pageSize, Int(p.u32(28)) <= PageCache.maxBatch else { return nil }
            return DoublewriteFormat.headerPages(count: Int(p.u32(28)), pageSize: pageSize) * pageSize
        }
    }

    public static func headerPages(count: Int, pageSize: Int) -> Int {
        (directoryOffset + count * entrySize + pageSize - 1) / pageSize
    }

    static func checksum(_ p: UnsafeRawBufferPointer, count: Int) -> UInt32 {
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<36]))
        return CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[directoryOffset..<(directoryOffset + count * entrySize)]), extending: crc)
    }

    static func checksum(_ p: UnsafeMutableRawBufferPointer, count: Int) -> UInt32 {
        checksum(UnsafeRawBufferPointer(p), count: count)
    }
}
