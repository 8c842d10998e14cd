import Testing
@testable import JetStore

/// The transaction payload inside log records (LogRecord.swift): what LogPayloadBuilder
/// writes, LogOperation.decode reads back field for field; anything cut or unknown is
/// JET_errLogReadVerifyFailure naming the place, never a trap.
@Suite struct LogRecordTests {
    static let signature = Signature(random: 0xDEAD_BEEF_0BAD_F00D, time: 1_750_000_000_000_000)

    /// A leaf page with `count` cell slots and cells from `cellStart` on: its free space is the hole.
    static func leaf(size: Int, count: Int, cellStart: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        var page = (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        page.withUnsafeMutableBytes { p in
            p[PageFormat.typeOffset] = PageFormat.PageType.leaf.rawValue
            p.setU16(PageFormat.countOffset, UInt16(count))
            p.setU16(PageFormat.cellStartOffset, UInt16(cellStart))
        }
        return page
    }

    static func malformed(at place: String) -> JetError {
        JetError(.logReadVerifyFailure, "log record at \(place) has a valid checksum but a malformed body; the log is damaged: restore from a backup")
    }

    static func decode(_ payload: [UInt8], where place: String = "edb00000003.log offset 4096") throws -> [LogOperation] {
        try payload.withUnsafeBytes { try LogOperation.decode($0, where: place) }
    }

    @Test(arguments: PageFormat.supportedPageSizes) func pageImageRoundTripRebuildsThePage(size: Int) throws {
        let page = Self.leaf(size: size, count: 5, cellStart: size / 2, seed: UInt64(size))
        var b = LogPayloadBuilder()
        page.withUnsafeBytes { b.image(dbid: 3, pgno: 0x0102_0304, page: $0) }
        let ops = try Self.decode(b.w.bytes)
        #expect(ops.count == 1)
        guard case .pageImage(let dbid, let pgno, let hs, let hl, let bytes) = try #require(ops.first) else {
            Issue.record("decoded \(ops)"); return
        }
        #expect(dbid == 3 && pgno == 0x0102_0304)
        #expect(hs == PageFormat.headerSize + 2 * 5 && hl == size / 2 - hs)
        #expect(bytes.count == size - hl)
        // The hole was left out; zeros in its place rebuild every byte outside it.
        let rebuilt = Array(bytes[0..<hs]) + [UInt8](repeating: 0, count: hl) + Array(bytes[hs...])
        #expect(Array(rebuilt[0..<hs]) == Array(page[0..<hs]))
        #expect(Array(rebuilt[(hs + hl)...]) == Array(page[(hs + hl)...]))
    }

    @Test func pageRangesRoundTripPreservesEveryRange() throws {
        let page = Self.leaf(size: 8192, count: 0, cellStart: 8192, seed: 7)
        let ranges = [0..<32, 100..<101, 4000..<4000, 8000..<8192]
        var b = LogPayloadBuilder()
        page.withUnsafeBytes { b.ranges(dbid: 65535, pgno: 9, previousDbtime: .max - 3, page: $0, ranges: ranges) }
        let ops = try Self.decode(b.w.bytes)
        guard ops.count == 1, case .pageRanges(let dbid, let pgno, let prev, let got) = ops[0] else {
            Issue.record("decoded \(ops)"); return
        }
        #expect(dbid == 65535 && pgno == 9 && prev == .max - 3)
        #expect(got.map(\.offset) == ranges.map(\.lowerBound))
        #expect(got.map(\.bytes) == ranges.map { Array(page[$0]) })
    }

    @Test func createDatabaseRoundTripPreservesNameSignatureAndPageSize() throws {
        var b = LogPayloadBuilder()
        b.createDatabase(dbid: 12, pageSize: 32768, signature: Self.signature, name: String(repeating: "n-_9", count: 16))
        let ops = try Self.decode(b.w.bytes)
        guard ops.count == 1, case .createDatabase(let dbid, let ps, let sig, let name) = ops[0] else {
            Issue.record("decoded \(ops)"); return
        }
        #expect(dbid == 12 && ps == 32768 && sig == Self.signature && name == String(repeating: "n-_9", count: 16))
    }

    @Test func operationsDecodeInTheOrderWritten() throws {
        let page = Self.leaf(size: 4096, count: 1, cellStart: 4000, seed: 1)
        var b = LogPayloadBuilder()
        #expect(b.isEmpty)
        b.createDatabase(dbid: 1, pageSize: 4096, signature: Self.signature, name: "a")
        page.withUnsafeBytes { b.image(dbid: 1, pgno: 2, page: $0) }
        page.withUnsafeBytes { b.ranges(dbid: 1, pgno: 2, previousDbtime: 5, page: $0, ranges: [40..<48]) }
        let kinds = try Self.decode(b.w.bytes).map { op -> String in
            switch op {
            case .createDatabase: "create"
            case .pageImage: "image"
            case .pageRanges: "ranges"
            }
        }
        #expect(kinds == ["create", "image", "ranges"])
        #expect(try Self.decode([]).isEmpty)
    }

    /// A payload cut anywhere inside an operation is refused; cut between two operations it
    /// is the operations before the cut (the record checksum, not the payload, frames it).
    @Test func everyTruncationInsideAnOperationIsRejected() throws {
        let page = Self.leaf(size: 4096, count: 2, cellStart: 4090, seed: 3)
        var b = LogPayloadBuilder()
        b.createDatabase(dbid: 1, pageSize: 4096, signature: Self.signature, name: "orders")
        let first = b.w.bytes.count
        page.withUnsafeBytes { b.image(dbid: 1, pgno: 2, page: $0) }
        let second = b.w.bytes.count
        page.withUnsafeBytes { b.ranges(dbid: 1, pgno: 2, previousDbtime: 5, page: $0, ranges: [40..<48, 90..<99]) }
        let payload = b.w.bytes
        var refused = 0
        for n in 1..<payload.count {
            let cut = Array(payload[0..<n])
            if n == first || n == second {
                #expect(try Self.decode(cut).count == (n == first ? 1 : 2))
                continue
            }
            do {
                let ops = try Self.decode(cut)
                Issue.record("a payload cut at \(n) of \(payload.count) decoded to \(ops.count) operations")
            } catch let e as JetError {
                #expect(e == Self.malformed(at: "edb00000003.log offset 4096"))
                refused += 1
            }
        }
        #expect(refused == payload.count - 3)
    }

    @Test(arguments: [UInt8(0), 4, 0x80, 255]) func unknownOperationTagIsRejected(tag: UInt8) {
        var b = LogPayloadBuilder()
        b.createDatabase(dbid: 1, pageSize: 4096, signature: Self.signature, name: "a")
        #expect(throws: Self.malformed(at: "here")) {
            try Self.decode(b.w.bytes + [tag], where: "here")
        }
    }

    /// Lengths come from the payload: one that claims more than is there is refused, not read.
    @Test func lengthPastTheEndOfThePayloadIsRejected() {
        var w = ByteWriter()
        w.u8(LogOperation.imageTag); w.u16(1); w.u32(2); w.u16(0); w.u16(0); w.u32(.max)
        #expect(throws: Self.malformed(at: "there")) {
            try Self.decode(w.bytes + [1, 2, 3], where: "there")
        }
    }
}
