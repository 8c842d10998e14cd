import Testing
@testable import JetStore

/// The transaction payload inside log records (LogRecord.swift, format 5): what the engine
/// writes (LogPayloadBuilder, PageChange.encode), LogTransaction.decode reads back field for
/// field; anything cut, unknown or inconsistent is JET_errLogReadVerifyFailure naming the
/// place, never a trap.
@Suite struct LogRecordTests {
    static let signature = Signature(random: 0xDEAD_BEEF_0BAD_F00D, time: 1_750_000_000_000_000)
    static let time: UInt64 = 1_790_000_000_123_456

    static func malformed(at place: String) -> JetError {
        JetError(.logReadVerifyFailure, "log record at \(place) has a valid checksum but a malformed body; the log is damaged: restore from a backup")
    }

    static func decode(_ payload: [UInt8], where place: String = "edb00000003.log offset 4096") throws -> LogTransaction {
        try payload.withUnsafeBytes { try LogTransaction.decode($0, where: place) }
    }

    static func leafCell(_ key: String, _ value: [UInt8]) -> [UInt8] {
        Array(key.utf8).withUnsafeBytes { k in value.withUnsafeBytes { v in Node.leafCell(key: k, valueLength: v.count, inline: v, overflow: 0) } }
    }

    static func overflowCell(_ key: String, length: Int, first: UInt32) -> [UInt8] {
        Array(key.utf8).withUnsafeBytes { Node.leafCell(key: $0, valueLength: length, inline: nil, overflow: first) }
    }

    static func branchCell(_ key: String, child: UInt32) -> [UInt8] {
        Array(key.utf8).withUnsafeBytes { Node.branchCell(key: $0, child: child) }
    }

    /// One transaction: a page group with the given changes of a leaf (or, `branch`, a branch).
    static func payload(_ changes: [PageChange], branch: Bool = false, dbid: UInt16 = 3, pgno: UInt32 = 0x0102_0304,
                        before: UInt64 = 41, after: UInt64 = 1_000_000) -> [UInt8] {
        var b = LogPayloadBuilder(commitTime: time)
        b.dbtime(dbid: dbid, after)
        var w = ByteWriter()
        for c in changes { c.encode(into: &w, branch: branch) }
        b.page(dbid: dbid, pgno: pgno, before: before, after: after, count: changes.count, changes: w.bytes)
        return b.w.bytes
    }

    static let everyChange: [PageChange] = [
        .insert(slot: 0, cell: leafCell("a", [1, 2, 3])),
        .insert(slot: 300, cell: leafCell(String(repeating: "k", count: 255), [UInt8](repeating: 7, count: 3000))),
        .insert(slot: 2, cell: overflowCell("big", length: 16 << 20, first: .max)),
        .insert(slot: 5, cell: leafCell("empty value", [])),
        .delete(slot: 16383),
        .replace(slot: 1, cell: leafCell("b", [9])),
        .keep(count: 0),
        .keep(count: 40),
        .format(type: .leaf, cells: [leafCell("x", [1]), overflowCell("y", length: 70000, first: 12), leafCell("z", [])]),
        .format(type: .branch, cells: [branchCell("", child: 7), branchCell("m", child: .max)]),
        .format(type: .leaf, cells: []),
        .overflow(next: 0, bytes: [UInt8](repeating: 0xA5, count: 8160)),
        .overflow(next: .max, bytes: []),
        .free(next: 0),
        .free(next: 0xFFFF_FFFF),
        .allocation(pageCount: .max, root: 2, freeListHead: 0, freeCount: 1 << 31),
        .header(bytes: [UInt8](0..<200)),
        .move(source: 2, from: 0),
        .move(source: .max, from: 16383),
    ]

    @Test func everyPageChangeRoundTrips() throws {
        let t = try Self.decode(Self.payload(Self.everyChange))
        #expect(t.commitTime == Self.time)
        #expect(t.operations == [.page(dbid: 3, pgno: 0x0102_0304, before: 41, after: 1_000_000, changes: Self.everyChange)])
    }

    @Test func branchCellsRoundTripOnABranchPage() throws {
        let changes: [PageChange] = [.insert(slot: 1, cell: Self.branchCell("sep", child: 99)),
                                     .replace(slot: 0, cell: Self.branchCell("", child: 1)), .delete(slot: 3)]
        let t = try Self.decode(Self.payload(changes, branch: true))
        #expect(t.operations == [.page(dbid: 3, pgno: 0x0102_0304, before: 41, after: 1_000_000, changes: changes)])
    }

    /// The point of format 4: an insert costs about its key and value, not a page.
    @Test func anInsertIsLoggedInAboutItsOwnSize() throws {
        let cell = Self.leafCell("0123456789abcdef", [UInt8](repeating: 0x61, count: 150))
        let bytes = Self.payload([.insert(slot: 17, cell: cell)], pgno: 40000, before: 999_000, after: 1_000_000)
        // 8 commit time + 5 dbtime op + group (1 tag, 1 dbid, 3 pgno, 2 delta, 1 count) + change (1 tag, 1 slot, 1 kind, 1, 2, 166).
        #expect(bytes.count <= 8 + 5 + 8 + 172 + 2)
    }

    @Test func dbtimesGiveEachPageGroupItsBeforeAndAfter() throws {
        var b = LogPayloadBuilder(commitTime: 5)
        b.dbtime(dbid: 1, 10)
        b.dbtime(dbid: 2, 7_000_000_000)
        b.page(dbid: 2, pgno: 0, before: 0, after: 7_000_000_000, count: 0, changes: [])
        b.page(dbid: 1, pgno: 9, before: 9, after: 10, count: 0, changes: [])
        b.createDatabase(dbid: 12, pageSize: 32768, signature: Self.signature, name: String(repeating: "n-_9", count: 16))
        let t = try Self.decode(b.w.bytes)
        #expect(t == LogTransaction(commitTime: 5, operations: [
            .page(dbid: 2, pgno: 0, before: 0, after: 7_000_000_000, changes: []),
            .page(dbid: 1, pgno: 9, before: 9, after: 10, changes: []),
            .createDatabase(dbid: 12, pageSize: 32768, signature: Self.signature, name: String(repeating: "n-_9", count: 16)),
        ]))
        #expect(try b.w.bytes.withUnsafeBytes { try LogTransaction.commitTime($0, where: "x") } == 5)
        #expect(try Self.decode(LogPayloadBuilder(commitTime: 77).w.bytes) == LogTransaction(commitTime: 77, operations: []))
    }

    @Test func pageGroupWithoutItsDatabasesDbtimeIsRejected() {
        var w = ByteWriter()
        w.u64(1); w.u8(LogTransaction.pageTag); w.varint(1); w.varint(9); w.varint(1); w.varint(0)
        #expect(throws: Self.malformed(at: "here")) { try Self.decode(w.bytes, where: "here") }
    }

    /// "before" is after − delta: a delta of 0 (no change of dbtime) or past "after" (a dbtime
    /// below zero) cannot come from the engine.
    @Test(arguments: [UInt64(0), 11, .max]) func pageGroupWithImpossibleDbtimeIsRejected(delta: UInt64) {
        var w = ByteWriter()
        w.u64(1); w.u8(LogTransaction.dbtimeTag); w.varint(1); w.varint(10)
        w.u8(LogTransaction.pageTag); w.varint(1); w.varint(9); w.varint(delta); w.varint(0)
        #expect(throws: Self.malformed(at: "here")) { try Self.decode(w.bytes, where: "here") }
    }

    /// A payload cut anywhere inside an operation is refused; cut between two operations it
    /// is the operations before the cut (the record checksum, not the payload, frames it).
    @Test func everyTruncationInsideAnOperationIsRejected() throws {
        var b = LogPayloadBuilder(commitTime: Self.time)
        b.createDatabase(dbid: 1, pageSize: 4096, signature: Self.signature, name: "orders")
        let first = b.w.bytes.count
        b.dbtime(dbid: 1, 500)
        let second = b.w.bytes.count
        var w = ByteWriter()
        for c in Self.everyChange.prefix(12) { c.encode(into: &w, branch: false) }
        b.page(dbid: 1, pgno: 2, before: 5, after: 500, count: 12, changes: w.bytes)
        let payload = b.w.bytes
        var refused = 0
        for n in 0..<payload.count {
            let cut = Array(payload[0..<n])
            if n == 8 || n == first || n == second {
                #expect(try Self.decode(cut).operations.count == (n == 8 ? 0 : 1))
                continue
            }
            do {
                let t = try Self.decode(cut)
                Issue.record("a payload cut at \(n) of \(payload.count) decoded to \(t.operations.count) operations")
            } catch let e as JetError {
                #expect(e == Self.malformed(at: "edb00000003.log offset 4096"))
                refused += 1
            }
        }
        #expect(refused == payload.count - 3)
    }

    @Test(arguments: [UInt8(0), 4, 0x80, 255]) func unknownOperationTagIsRejected(tag: UInt8) {
        #expect(throws: Self.malformed(at: "here")) {
            try Self.decode(LogPayloadBuilder(commitTime: 1).w.bytes + [tag], where: "here")
        }
    }

    @Test(arguments: [UInt8(0), 10, 0x80, 255]) func unknownChangeTagIsRejected(tag: UInt8) {
        var w = ByteWriter()
        w.u64(1); w.u8(LogTransaction.dbtimeTag); w.varint(1); w.varint(10)
        w.u8(LogTransaction.pageTag); w.varint(1); w.varint(9); w.varint(1); w.varint(1); w.u8(tag)
        #expect(throws: Self.malformed(at: "here")) { try Self.decode(w.bytes + [0, 0, 0, 0], where: "here") }
    }

    @Test(arguments: [UInt8(3), 4, 255]) func unknownCellKindIsRejected(kind: UInt8) {
        let good = Self.payload([.insert(slot: 0, cell: Self.leafCell("a", [1]))])
        // The cell's kind byte follows the insert tag and the slot.
        var bad = good
        bad[good.count - 5] = kind
        #expect(throws: Self.malformed(at: "here")) { try Self.decode(bad, where: "here") }
    }

    /// Lengths and counts come from the payload: one that claims more than is there, or more
    /// than a page can hold, is refused, not read or allocated.
    @Test func lengthsPastTheEndOrPastAPageAreRejected() {
        for tail: [UInt8] in [[PageChange.overflowTag, 0, 0xFF, 0xFF, 0x03], [PageChange.headerTag, 0x80, 0x80, 0x04],
                              [PageChange.formatTag, PageFormat.PageType.leaf.rawValue, 0xFF, 0xFF, 0x7F],
                              [PageChange.formatTag, PageFormat.PageType.overflow.rawValue, 0],
                              [PageChange.insertTag, 0, 0, 0xFF, 0x01, 1, 0x61]] {
            var w = ByteWriter()
            w.u64(1); w.u8(LogTransaction.dbtimeTag); w.varint(1); w.varint(10)
            w.u8(LogTransaction.pageTag); w.varint(1); w.varint(9); w.varint(1); w.varint(1)
            #expect(throws: Self.malformed(at: "there"), "\(tail)") { try Self.decode(w.bytes + tail + [1, 2, 3], where: "there") }
        }
    }

    /// A varint of more than 64 bits is refused, not wrapped.
    @Test func overlongVarintIsRejected() {
        var w = ByteWriter()
        w.u64(1); w.u8(LogTransaction.dbtimeTag); w.varint(1)
        w.raw([UInt8](repeating: 0xFF, count: 10) + [0x01])
        #expect(throws: Self.malformed(at: "v")) { try Self.decode(w.bytes, where: "v") }
    }

    /// Each change made on a page and logged, re-made from the log on a copy of the page as it
    /// was before, gives the same bytes: the property redo rests on.
    @Test func changesReplayedOnThePageVersionTheyWereMadeFromGiveTheSameBytes() throws {
        let size = 4096
        let f = PageFrame(dbid: 1, pgno: 9, buffers: PageBuffers(pageSize: size))
        let redo = TransactionRedo()
        try f.log(.format(type: .leaf, cells: (0..<5).map { Self.leafCell("k\($0)", [UInt8](repeating: UInt8($0), count: 300)) }), into: redo)
        let before = [UInt8](f.bytes)
        redo.reset(); f.redoCount = 0
        var changes: [PageChange] = [.delete(slot: 2), .insert(slot: 2, cell: Self.leafCell("k2", [UInt8](repeating: 9, count: 900))),
                                     .replace(slot: 0, cell: Self.leafCell("k0", [1])), .keep(count: 3)]
        // Enough inserts to need compaction of the fragmented space.
        for i in 0..<6 { changes.append(.insert(slot: 3, cell: Self.leafCell("m\(i)", [UInt8](repeating: 3, count: 400)))) }
        for c in changes { try f.log(c, into: redo) }
        var b = LogPayloadBuilder(commitTime: 1)
        b.dbtime(dbid: 1, 2)
        #expect(redo.runs.count == 1)
        redo.withChanges(of: redo.runs[0]) { b.page(dbid: 1, pgno: 9, before: 1, after: 2, count: f.redoCount, changes: $0) }
        guard case .page(_, _, _, _, let decoded) = try Self.decode(b.w.bytes).operations[0] else { Issue.record("no page"); return }
        #expect(decoded == changes)
        let replay = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { replay.deallocate() }
        before.withUnsafeBytes { replay.copyMemory(from: $0) }
        for c in decoded { try c.apply(to: replay, pgno: 9) }
        #expect([UInt8](replay) == [UInt8](f.bytes))
    }

    /// A split's new page named by the page its cells come from: made again from that page as
    /// it was before the split, it has the same bytes, and the log holds a few bytes for it
    /// instead of the cells.
    @Test func moveReplayedFromTheSourceAsItWasBeforeTheSplitGivesTheSameBytes() throws {
        let size = 4096
        let buffers = PageBuffers(pageSize: size)
        let redo = TransactionRedo()
        let old = PageFrame(dbid: 1, pgno: 5, buffers: buffers), new = PageFrame(dbid: 1, pgno: 6, buffers: buffers)
        let cells = (0..<12).map { Self.leafCell(String(format: "k%02d", $0), [UInt8](repeating: UInt8($0), count: 250)) }
        try old.log(.format(type: .leaf, cells: cells), into: redo)
        let oldBefore = [UInt8](old.bytes), newBefore = [UInt8](new.bytes)
        redo.reset()
        // As BTree.split logs it: the new page from the old one's cells 7…, a cell inserted
        // there, then the old page keeps 7 and the old page changes again.
        try new.log(.move(source: 5, from: 7), source: old, into: redo)
        try new.log(.insert(slot: 1, cell: Self.leafCell("k075", [1])), into: redo)
        try old.log(.keep(count: 7), into: redo)
        try old.log(.delete(slot: 0), into: redo)
        #expect(redo.runs.map(\.frame.pgno) == [6, 5])
        #expect(redo.runs.map(\.count) == [2, 2])
        #expect(redo.bytes.bytes.count < 40)
        var b = LogPayloadBuilder(commitTime: 1)
        b.dbtime(dbid: 1, 2)
        for run in redo.runs {
            redo.withChanges(of: run) { b.page(dbid: 1, pgno: run.frame.pgno, before: 1, after: 2, count: run.count, changes: $0) }
        }
        let ops = try Self.decode(b.w.bytes).operations
        let pages = [UInt32(5): UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64),
                     6: UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)]
        defer { for p in pages.values { p.deallocate() } }
        oldBefore.withUnsafeBytes { pages[5]!.copyMemory(from: $0) }
        newBefore.withUnsafeBytes { pages[6]!.copyMemory(from: $0) }
        for case .page(_, let pgno, _, _, let changes) in ops {
            for c in changes {
                var source: UnsafeMutableRawBufferPointer?
                if case .move(let from, _) = c { source = pages[from] }
                try c.apply(to: pages[pgno]!, pgno: pgno, source: source)
            }
        }
        #expect([UInt8](pages[5]!) == [UInt8](old.bytes))
        #expect([UInt8](pages[6]!) == [UInt8](new.bytes))
        // Made from the old page after the split, the new page would be wrong: redo never does
        // that (Instance.splitSource refuses), and the change itself cannot tell.
        #expect(throws: PageChange.Misfit.self) { try PageChange.move(source: 5, from: 9).apply(to: pages[6]!, pgno: 6, source: pages[5]!) }
        #expect(throws: PageChange.Misfit.self) { try PageChange.move(source: 5, from: 0).apply(to: pages[6]!, pgno: 6, source: nil) }
        #expect(throws: PageChange.Misfit.self) { try PageChange.move(source: 6, from: 0).apply(to: pages[6]!, pgno: 6, source: pages[6]!) }
    }

    /// A move naming the header page or its shadow (never a split's old page) is malformed.
    @Test(arguments: [UInt32(0), 1]) func moveFromAPageThatCannotHoldCellsIsRejected(source: UInt32) {
        var w = ByteWriter()
        w.u64(1); w.u8(LogTransaction.dbtimeTag); w.varint(1); w.varint(10)
        w.u8(LogTransaction.pageTag); w.varint(1); w.varint(9); w.varint(1); w.varint(1)
        w.u8(PageChange.moveTag); w.varint(source); w.varint(0)
        #expect(throws: Self.malformed(at: "m")) { try Self.decode(w.bytes, where: "m") }
    }

    /// A change that does not fit the page it is applied to is refused (redo turns it into
    /// JET_errLogReadVerifyFailure), never a trap.
    @Test func changeThatDoesNotFitThePageIsRefused() throws {
        let size = 4096
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { page.deallocate() }
        page.initializeMemory(as: UInt8.self, repeating: 0)
        try PageChange.format(type: .leaf, cells: [Self.leafCell("a", [1])]).apply(to: page, pgno: 2)
        for c: PageChange in [.delete(slot: 1), .insert(slot: 2, cell: Self.leafCell("b", [])), .keep(count: 2),
                              .replace(slot: 5, cell: Self.leafCell("c", [])),
                              .insert(slot: 0, cell: Self.leafCell("d", [UInt8](repeating: 0, count: 4100))),
                              .allocation(pageCount: 1, root: 1, freeListHead: 0, freeCount: 0),
                              .header(bytes: [UInt8](repeating: 1, count: 4090))] {
            #expect(throws: PageChange.Misfit.self, "\(c)") { try c.apply(to: page, pgno: 2) }
        }
    }
}
