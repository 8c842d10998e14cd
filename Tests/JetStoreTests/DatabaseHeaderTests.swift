import Testing
@testable import JetStore

/// The database header on page 0 and its shadow on page 1 (DatabaseHeader.swift, read by
/// DatabaseFile.readHeader): every field survives a write and a read, a header that is not
/// ours is refused, and a damaged page 0 falls back to the shadow.
@Suite struct DatabaseHeaderTests {
    /// A header with every field set away from its default.
    static func full(pageSize: Int = 4096) -> DatabaseHeader {
        var h = DatabaseHeader(pageSize: UInt32(pageSize), dbid: 0x0102_0304, name: "orders_2026-11",
                               signature: Signature(random: 0x1111_2222_3333_4444, time: 1_700_000_000_000_001),
                               logSignature: Signature(random: 0x5555_6666_7777_8888, time: 1_700_000_000_000_002))
        h.state = .cleanShutdown
        h.genMin = 17; h.genMax = 0xFFFF_FFF0
        h.lastConsistent = LogPosition(generation: 23, offset: 4096 + 8 * 99)
        h.lastConsistentTime = 1_800_000_000_000_003
        h.pageCount = 1000; h.rootPage = 37; h.freeListHead = 999; h.freeCount = 12
        h.dbtime = 0x0123_4567_89AB_CDEF
        h.isBackupImage = true
        h.fullPrev = .init(genLow: 1, genHigh: 9, position: LogPosition(generation: 9, offset: 8), time: 5)
        h.incPrev = .init(genLow: 10, genHigh: 12, position: LogPosition(generation: 12, offset: 16), time: 6)
        h.fullCur = .init(genLow: 13, genHigh: 20, position: LogPosition(generation: 20, offset: 24), time: .max)
        return h
    }

    static func encoded(_ h: DatabaseHeader, size: Int = 4096) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: size)
        page.withUnsafeMutableBytes { h.encode(into: $0) }
        return page
    }

    static func decode(_ page: [UInt8]) -> DatabaseHeader? { page.withUnsafeBytes { DatabaseHeader.decode($0) } }

    /// A database file holding `h` on page 0 and its shadow, written the way the engine writes it.
    static func file(_ h: DatabaseHeader) throws -> (MemoryFileSystem, any StorageFile) {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i")
        let f = try fs.open("/i/db.edb", .createNew)
        let db = DatabaseFile(name: "db", path: "/i/db.edb", file: f, header: h)
        var page = [UInt8](repeating: 0, count: Int(h.pageSize))
        try page.withUnsafeMutableBytes { try db.writeHeaderDirectly($0) }
        return (fs, f)
    }

    static func read(_ f: any StorageFile, repair: Bool = false) throws -> (DatabaseHeader, repaired: Bool) {
        try DatabaseFile.readHeader(file: f, path: "/i/db.edb", repair: repair)
    }

    static func readError(_ f: any StorageFile, repair: Bool = false) -> JetError? {
        do { _ = try read(f, repair: repair); return nil }
        catch let e as JetError { return e } catch { return JetError(.diskIO, "\(error)") }
    }

    // MARK: Round trip

    @Test(arguments: PageFormat.supportedPageSizes) func roundTripPreservesEveryField(size: Int) throws {
        let h = Self.full(pageSize: size)
        let back = try #require(Self.decode(Self.encoded(h, size: size)))
        #expect(back == h)
        #expect(back.name == "orders_2026-11" && back.fullCur?.time == .max && back.lastConsistent.offset == 4096 + 8 * 99)
    }

    @Test(arguments: [DatabaseHeader.State.justCreated, .dirtyShutdown, .cleanShutdown])
    func everyStateRoundTrips(state: DatabaseHeader.State) throws {
        var h = Self.full()
        h.state = state
        #expect(try #require(Self.decode(Self.encoded(h))).state == state)
    }

    /// Each backup slot is independent: one set leaves the others empty.
    @Test(arguments: 0..<3) func backupSlotsRoundTripOneByOne(slot: Int) throws {
        var h = Self.full()
        let info = DatabaseHeader.BackupInfo(genLow: 3, genHigh: 4, position: LogPosition(generation: 4, offset: 64), time: 77)
        h.fullPrev = slot == 0 ? info : nil
        h.incPrev = slot == 1 ? info : nil
        h.fullCur = slot == 2 ? info : nil
        // Encoded over a page that held all three: a cleared slot must not survive.
        var page = Self.encoded(Self.full())
        page.withUnsafeMutableBytes { h.encode(into: $0) }
        let back = try #require(Self.decode(page))
        #expect([back.fullPrev, back.incPrev, back.fullCur] == [h.fullPrev, h.incPrev, h.fullCur])
        #expect(back == h)
    }

    /// The name field holds 64 bytes; database names are at most that (FileNames.isValidDatabaseName).
    @Test func nameIsKeptUpTo64BytesAndCutBeyond() throws {
        var h = Self.full()
        h.name = String(repeating: "x", count: 64)
        #expect(try #require(Self.decode(Self.encoded(h))).name == h.name)
        h.name = String(repeating: "y", count: 70)
        #expect(try #require(Self.decode(Self.encoded(h))).name == String(repeating: "y", count: 64))
    }

    /// The encoded fields end where the header page's hole (left out of log images) begins.
    @Test func encodingWritesNothingPastEncodedEnd() {
        var page = [UInt8](repeating: 0xEE, count: 4096)
        page.withUnsafeMutableBytes { Self.full().encode(into: $0) }
        #expect(page[DatabaseHeader.encodedEnd...].allSatisfy { $0 == 0xEE })
        #expect(page[0..<PageFormat.headerSize].enumerated().allSatisfy { $0.offset == PageFormat.typeOffset || $0.element == 0xEE })
    }

    // MARK: Rejection

    static func rejected(_ change: (UnsafeMutableRawBufferPointer) -> Void) -> Bool {
        var page = encoded(full())
        page.withUnsafeMutableBytes(change)
        return decode(page) == nil
    }

    @Test(arguments: 0..<8) func flippedMagicByteIsNotAHeader(offset: Int) {
        #expect(Self.rejected { $0[DatabaseHeader.oMagic + offset] ^= 0x01 })
    }

    @Test(arguments: [UInt32(0), 2, .max]) func otherFormatVersionIsNotAHeader(version: UInt32) {
        #expect(Self.rejected { $0.setU32(DatabaseHeader.oVersion, version) })
    }

    @Test(arguments: [UInt32(0), 4, .max]) func unknownStateIsNotAHeader(state: UInt32) {
        #expect(Self.rejected { $0.setU32(DatabaseHeader.oState, state) })
    }

    @Test(arguments: [UInt32(0), 512, 2048, 4097, 65536]) func unsupportedPageSizeIsNotAHeader(size: UInt32) {
        #expect(Self.rejected { $0.setU32(DatabaseHeader.oPageSize, size) })
    }

    /// Header, shadow and the root: a file has at least three pages.
    @Test(arguments: [UInt32(0), 2]) func fewerThanThreePagesIsNotAHeader(count: UInt32) {
        #expect(Self.rejected { $0.setU32(DatabaseHeader.oPageCount, count) })
        #expect(!Self.rejected { $0.setU32(DatabaseHeader.oPageCount, 3) })
    }

    @Test(arguments: [PageFormat.PageType.free, .branch, .leaf, .overflow]) func otherPageTypeIsNotAHeader(type: PageFormat.PageType) {
        #expect(Self.rejected { $0[PageFormat.typeOffset] = type.rawValue })
    }

    @Test func bufferShorterThanTheFieldsIsNotAHeader() {
        let page = Self.encoded(Self.full())
        #expect(Self.decode(Array(page[0..<(DatabaseHeader.encodedEnd - 1)])) == nil)
        #expect(Self.decode(Array(page[0..<DatabaseHeader.encodedEnd])) == Self.full())
    }

    // MARK: Page 0 and its shadow

    @Test(arguments: PageFormat.supportedPageSizes) func headerAndShadowAreWrittenAndReadBack(size: Int) throws {
        let (fs, f) = try Self.file(Self.full(pageSize: size))
        let bytes = try #require(fs.contents("/i/db.edb"))
        #expect(bytes.count == 2 * size)
        #expect(Array(bytes[8..<size]) == Array(bytes[(size + 8)...]))
        #expect(bytes.withUnsafeBytes { PageFormat.verify(UnsafeRawBufferPointer(rebasing: $0[size...]), pgno: 1) } == .valid)
        let (h, repaired) = try Self.read(f)
        #expect(h == Self.full(pageSize: size) && !repaired)
    }

    /// Any damage to page 0 (here: each byte of its fields; every 7th at the larger sizes) is
    /// caught by its checksum and the shadow is used; with `repair` page 0 is rewritten from it.
    @Test(arguments: PageFormat.supportedPageSizes) func shadowHeaderUsedWhenPrimaryDamaged(size: Int) throws {
        let h = Self.full(pageSize: size)
        let (fs, f) = try Self.file(h)
        let good = try #require(fs.contents("/i/db.edb"))
        var missed: [Int] = []
        for offset in stride(from: 0, to: DatabaseHeader.encodedEnd, by: size == 4096 ? 1 : 7) {
            var bad = good
            bad[offset] ^= 0x08
            fs.setContents("/i/db.edb", bad)
            guard let got = try? Self.read(f), got.0 == h, got.repaired else { missed.append(offset); continue }
        }
        #expect(missed.isEmpty)
        // Repair: page 0 becomes the shadow, sealed as page 0; the next read needs no shadow.
        var bad = good
        bad[300] ^= 0x08
        fs.setContents("/i/db.edb", bad)
        #expect(try Self.read(f, repair: true).repaired)
        #expect(fs.contents("/i/db.edb") == good)
        #expect(try Self.read(f).repaired == false)
    }

    @Test func readWithoutRepairLeavesTheFileAlone() throws {
        let (fs, f) = try Self.file(Self.full())
        var bad = try #require(fs.contents("/i/db.edb"))
        bad[100] ^= 0x08
        fs.setContents("/i/db.edb", bad)
        #expect(try Self.read(f).repaired)
        #expect(fs.contents("/i/db.edb") == bad)
    }

    @Test func bothHeaderCopiesDamagedIsReadVerifyFailure() throws {
        let (fs, f) = try Self.file(Self.full())
        var bad = try #require(fs.contents("/i/db.edb"))
        bad[100] ^= 0x08
        bad[4096 + 100] ^= 0x08
        fs.setContents("/i/db.edb", bad)
        #expect(Self.readError(f, repair: true) == JetError(.readVerifyFailure,
            "the header of /i/db.edb (page 0) and its shadow (page 1) are both damaged or not a jetbackup database; restore it from a backup"))
        #expect(fs.contents("/i/db.edb") == bad)
    }

    /// A sealed header whose page-size field disagrees with the size it was sealed at is not
    /// trusted: the reader would otherwise walk the file with the wrong stride.
    @Test func pageSizeFieldMustMatchTheSealedSize() throws {
        var h = Self.full(pageSize: 8192)
        let (fs, f) = try Self.file(h)
        h.pageSize = 4096
        var page = Self.encoded(h, size: 8192)
        page.withUnsafeMutableBytes { PageFormat.seal($0, pgno: 0) }
        var shadow = page
        shadow.withUnsafeMutableBytes { PageFormat.seal($0, pgno: 1) }
        fs.setContents("/i/db.edb", page + shadow)
        #expect(Self.readError(f)?.code == .readVerifyFailure)
        // The same two pages with a matching field are read.
        h.pageSize = 8192
        page = Self.encoded(h, size: 8192)
        page.withUnsafeMutableBytes { PageFormat.seal($0, pgno: 0) }
        fs.setContents("/i/db.edb", page + shadow)
        #expect(try Self.read(f).0 == h)
    }

    @Test func emptyFileIsNotADatabase() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i")
        let f = try fs.open("/i/db.edb", .createNew)
        #expect(Self.readError(f) == JetError(.invalidDatabase, "/i/db.edb is empty: not a database; remove it or restore it from a backup"))
    }
}
