import Testing
@testable import JetStore

/// The doublewrite file (DoublewriteFormat.swift, Doublewrite.swift): every header field
/// survives encode and decode; a flipped byte, another page size or an impossible count is
/// refused; and recovery's scan takes exactly the whole copies of the current epoch — not a
/// torn copy, not a copy left from an earlier batch or epoch, nothing after a missing batch.
@Suite struct DoublewriteFormatTests {
    static func header(count: Int, pageSize: Int = 4096) -> DoublewriteFormat.Header {
        var entries: [DoublewriteFormat.Entry] = []
        for i in 0..<count {
            let dbtime: UInt64 = UInt64(i) << 33 | 5
            entries.append(DoublewriteFormat.Entry(dbid: UInt16(i % 3 + 1), pgno: UInt32(i * 977 + 2), dbtime: dbtime))
        }
        return DoublewriteFormat.Header(pageSize: pageSize, epoch: 0xFEED_FACE_CAFE_BEEF, batch: 7, entries: entries)
    }

    static func decode(_ bytes: [UInt8], pageSize: Int = 4096) -> DoublewriteFormat.Header? {
        bytes.withUnsafeBytes { DoublewriteFormat.Header.decode($0, pageSize: pageSize) }
    }

    @Test(arguments: [(0, 4096), (1, 4096), (300, 4096), (PageCache.maxBatch, 4096), (PageCache.maxBatch, 32768)])
    func headerRoundTripPreservesEveryField(count: Int, pageSize: Int) throws {
        let h = Self.header(count: count, pageSize: pageSize)
        let bytes = h.encode()
        #expect(bytes.count == h.headerPages * pageSize)
        #expect(bytes.withUnsafeBytes { DoublewriteFormat.Header.length($0, pageSize: pageSize) } == bytes.count)
        #expect(Self.decode(bytes, pageSize: pageSize) == h)
        #expect(h.size == (h.headerPages + count) * pageSize)
    }

    @Test func everyFlippedHeaderByteIsRefused() {
        let bytes = Self.header(count: 5).encode()
        for o in 0..<(DoublewriteFormat.directoryOffset + 5 * DoublewriteFormat.entrySize) {
            var b = bytes
            b[o] ^= 0x10
            #expect(Self.decode(b) == nil, "byte \(o)")
        }
    }

    @Test func headerOfAnotherPageSizeOrWithAnImpossibleCountIsRefused() {
        #expect(Self.decode(Self.header(count: 2).encode(), pageSize: 8192) == nil)
        // A count past the largest batch, or header pages that do not fit the count, even with
        // a checksum that matches.
        for (count, pages) in [(PageCache.maxBatch + 1, 5), (2, 2)] {
            var b = Self.header(count: 2).encode() + [UInt8](repeating: 0, count: 8192)
            b.withUnsafeMutableBytes { p in
                p.setU32(28, UInt32(count)); p.setU32(32, UInt32(pages))
                p.setU32(36, DoublewriteFormat.checksum(UnsafeRawBufferPointer(p), count: min(count, 2)))
            }
            #expect(Self.decode(b) == nil)
        }
        #expect(Self.decode([UInt8](repeating: 0, count: 39)) == nil)
    }

    // MARK: The file as recovery scans it

    static func frame(_ dbid: UInt16, _ pgno: UInt32, dbtime: UInt64) -> PageFrame {
        let f = PageFrame(dbid: dbid, pgno: pgno, buffers: PageBuffers(pageSize: 4096))
        var g = SplitMix64(seed: UInt64(pgno) ^ dbtime)
        for i in 32..<4096 { f.buffer[i] = UInt8(truncatingIfNeeded: g.next()) }
        f.buffer.setU64(PageFormat.dbtimeOffset, dbtime)
        PageFormat.seal(f.buffer, pgno: pgno)
        return f
    }

    /// The copies recovery would use: named by the current epoch's directories, and whole.
    static func scan(_ fs: MemoryFileSystem) throws -> [String] {
        var out: [String] = []
        let dw = Doublewrite(fs: fs, path: "/dw", pageSize: 4096, capacity: 1 << 20)
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)
        defer { page.deallocate() }
        try dw.scan { c in
            if try dw.read(c, into: page) { out.append("\(c.dbid):\(c.pgno)@\(c.dbtime)") }
        }
        return out
    }

    @Test func scanTakesTheCurrentEpochsWholeCopiesOnly() throws {
        let fs = MemoryFileSystem()
        let dw = Doublewrite(fs: fs, path: "/dw", pageSize: 4096, capacity: 1 << 20)
        try dw.write([Self.frame(1, 5, dbtime: 10), Self.frame(2, 6, dbtime: 11)])
        try dw.write([Self.frame(1, 7, dbtime: 12)])
        #expect(try Self.scan(fs) == ["1:5@10", "2:6@11", "1:7@12"])
        // A copy torn in the file (a sector of it never written) is left out, not its batch.
        var b = try #require(fs.contents("/dw"))
        let batch1 = 4096, firstCopy = batch1 + 4096
        for i in (firstCopy + 2048)..<(firstCopy + 2560) { b[i] = 0 }
        fs.setContents("/dw", b)
        #expect(try Self.scan(fs) == ["2:6@11", "1:7@12"])
        // A new epoch: the old batches further on are not taken for its own.
        try dw.startEpoch()
        #expect(try Self.scan(fs).isEmpty)
        try dw.write([Self.frame(3, 9, dbtime: 40), Self.frame(3, 10, dbtime: 41)])
        #expect(try Self.scan(fs) == ["3:9@40", "3:10@41"])
    }

    /// A batch whose header was written over a longer one of an earlier batch, but whose copies
    /// were not (a crash before they reached the disk): the copies there are of other pages or
    /// older versions, and the directory's page number and dbtime refuse them.
    @Test func scanRefusesCopiesLeftFromAnEarlierBatch() throws {
        let fs = MemoryFileSystem()
        let dw = Doublewrite(fs: fs, path: "/dw", pageSize: 4096, capacity: 1 << 20)
        try dw.write([Self.frame(1, 5, dbtime: 10), Self.frame(1, 6, dbtime: 11)])
        let old = try #require(fs.contents("/dw"))
        try dw.startEpoch()
        try dw.write([Self.frame(1, 6, dbtime: 30), Self.frame(1, 5, dbtime: 31)])
        var b = try #require(fs.contents("/dw"))
        // Keep the new header, put the old copies back where the new ones were.
        b.replaceSubrange(8192..<16384, with: old[8192..<16384])
        fs.setContents("/dw", b)
        #expect(try Self.scan(fs).isEmpty)
    }

    @Test func scanStopsAtAMissingOrForeignBatch() throws {
        let fs = MemoryFileSystem()
        let dw = Doublewrite(fs: fs, path: "/dw", pageSize: 4096, capacity: 1 << 20)
        try dw.write([Self.frame(1, 5, dbtime: 10)])
        try dw.write([Self.frame(1, 6, dbtime: 11)])
        try dw.write([Self.frame(1, 7, dbtime: 12)])
        var b = try #require(fs.contents("/dw"))
        // Batch 2 (the second with copies) becomes a batch of another epoch.
        let second = 4096 + 2 * 4096
        var h = try #require(Self.decode(Array(b[second..<(second + 4096)])))
        h.epoch ^= 1
        b.replaceSubrange(second..<(second + 4096), with: h.encode())
        fs.setContents("/dw", b)
        #expect(try Self.scan(fs) == ["1:5@10"])
        // No file at all: nothing to scan.
        #expect(try Self.scan(MemoryFileSystem()).isEmpty)
    }
}
