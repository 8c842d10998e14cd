import Testing
@testable import JetStore

/// The log generation format (LogFormat.swift, read by LogReader): the header and the record
/// framing, round-tripped and then damaged byte by byte. Each case is one line of the spec
/// in LogFormat's doc comment (leveldb `db/log_test.cc`).
@Suite struct LogFormatTests {
    static let signature = Signature(random: 0x0123_4567_89AB_CDEF, time: 1_700_000_000_123_456)

    static func header(generation: UInt32 = 7, fileSize: Int = LogFormat.minimumFileSize) -> LogFormat.Header {
        LogFormat.Header(generation: generation, signature: signature, creationTime: 1_800_000_000_000_001,
                         previousCreationTime: 1_799_999_999_000_002, fileSize: UInt32(fileSize))
    }

    /// A whole generation file: header, `records` appended as the writer does, zeros to the end.
    static func generation(_ records: [(LogFormat.RecordType, [UInt8])], size: Int = LogFormat.minimumFileSize) -> [UInt8] {
        var out = header(fileSize: size).encode()
        for (type, payload) in records { payload.withUnsafeBytes { LogFormat.appendRecord(&out, type: type, payload: $0) } }
        if out.count < size { out += [UInt8](repeating: 0, count: size - out.count) }
        return out
    }

    static func payload(_ n: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    static func decodeError(_ bytes: [UInt8], file: String = "edb00000007.log") -> JetError? {
        do { _ = try bytes.withUnsafeBytes { try LogFormat.Header.decode($0, file: file) }; return nil }
        catch let e as JetError { return e } catch { return JetError(.diskIO, "\(error)") }
    }

    /// Rewrites the header's checksum after a field was changed on purpose.
    static func reseal(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { p in p.setU32(52, CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<52]))) }
    }

    // MARK: Header

    @Test func headerRoundTripPreservesEveryField() throws {
        let h = LogFormat.Header(generation: 0xFEDC_BA98, signature: Signature(random: .max, time: 1), creationTime: .max - 1,
                                 previousCreationTime: 42, fileSize: UInt32(LogFormat.maximumFileSize))
        let bytes = h.encode()
        #expect(bytes.count == LogFormat.headerSize)
        #expect(Array(bytes[0..<8]) == Array("JETLOG01".utf8))
        let back = try bytes.withUnsafeBytes { try LogFormat.Header.decode($0, file: "x") }
        #expect(back == h)
        #expect(back.generation == 0xFEDC_BA98 && back.previousCreationTime == 42 && back.signature.random == .max)
    }

    /// Every byte the header's checksum covers is checked: the magic first, then the CRC.
    @Test(arguments: 0..<56) func flippedHeaderByteIsRejected(offset: Int) {
        var bytes = Self.header().encode()
        bytes[offset] ^= 0x01
        let e = Self.decodeError(bytes)
        #expect(e?.code == .logReadVerifyFailure)
        if offset < 8 {
            #expect(e?.message == "edb00000007.log is not a log generation (bad magic); the log is damaged: restore from a backup")
        } else {
            #expect(e?.message == "the header of log generation edb00000007.log fails its checksum; the log is damaged: restore from a backup")
        }
    }

    @Test(arguments: [0, 8, 55]) func headerShorterThanItsFieldsIsRejected(length: Int) {
        let bytes = Array(Self.header().encode().prefix(length))
        #expect(Self.decodeError(bytes)?.message.contains("bad magic") == true)
    }

    /// A generation written by another format version (a whole, checksummed header) is refused
    /// by name and both versions, not reported as damage of unknown kind.
    @Test(arguments: [UInt32(1), 2, 3, 6, .max]) func otherLogFormatVersionRefusedWithClearError(version: UInt32) {
        var bytes = Self.header().encode()
        bytes.withUnsafeMutableBytes { $0.setU32(8, version) }
        Self.reseal(&bytes)
        let e = Self.decodeError(bytes)
        #expect(e?.code == .logReadVerifyFailure)
        #expect(e?.message == "edb00000007.log has log format version \(version), this jetbackup reads 4 to 5"
                + (version < 4 ? "; it was written by an earlier jetbackup: read it with that version" : ""))
    }

    /// Version 4 (splits with their cells, one group per page) is what version 5 holds without
    /// its additions: still read.
    @Test func logFormatVersion4IsStillRead() throws {
        var bytes = Self.header().encode()
        bytes.withUnsafeMutableBytes { $0.setU32(8, 4) }
        Self.reseal(&bytes)
        #expect(Self.decodeError(bytes) == nil)
        #expect(Self.header().encode().withUnsafeBytes { $0.u32(8) } == LogFormat.version)
    }

    @Test(arguments: [-8, 8, -LogFormat.minimumFileSize / 2]) func fileSizeOtherThanTheHeaderSaysIsRejected(delta: Int) {
        var bytes = Self.generation([(.full, [1, 2, 3])])
        if delta < 0 { bytes.removeLast(-delta) } else { bytes += [UInt8](repeating: 0, count: delta) }
        do {
            _ = try LogReader.parse(bytes, path: "edb.log")
            Issue.record("a generation of the wrong size was accepted")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure)
            #expect(e.message.hasPrefix("log generation edb.log is \(bytes.count) bytes, its header says \(LogFormat.minimumFileSize);"))
        } catch { Issue.record("\(error)") }
    }

    // MARK: Records

    @Test func recordsRoundTripInOrderWithTheirTypesAndPayloads() throws {
        let records: [(LogFormat.RecordType, [UInt8])] = [
            (.full, []), (.first, Self.payload(1, seed: 1)), (.middle, Self.payload(7, seed: 2)),
            (.middle, Self.payload(8, seed: 3)), (.last, Self.payload(9, seed: 4)), (.full, Self.payload(4000, seed: 5)),
        ]
        let g = try LogReader.parse(Self.generation(records), path: "edb.log")
        #expect(g.header == Self.header())
        #expect(g.fragments.count == records.count)
        var offset = LogFormat.headerSize
        for (f, (type, payload)) in zip(g.fragments, records) {
            #expect(f.offset == offset && f.offset % LogFormat.alignment == 0)
            #expect(f.type == type)
            #expect(Array(g.bytes[f.payload]) == payload)
            offset += LogFormat.recordSize(payload: payload.count)
        }
        #expect(g.end == .clean(offset: offset))
        #expect(!g.endsInTornWrite)
    }

    /// Stored payload bytes are XORed with 0xA5, so zero runs in page images never look unwritten.
    @Test func payloadIsMaskedOnDisk() throws {
        let zeros = [UInt8](repeating: 0, count: 1024)
        let bytes = Self.generation([(.full, zeros)])
        let body = LogFormat.headerSize + LogFormat.recordHeaderSize
        #expect(bytes[body..<(body + zeros.count)].allSatisfy { $0 == 0xA5 })
        #expect(bytes.withUnsafeBytes { !LogFormat.hasUnwrittenSector($0, LogFormat.headerSize, body + zeros.count) })
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(Array(g.bytes[g.fragments[0].payload]) == zeros)
    }

    /// A parse that only checks (`unmask: false`, what a backup copies from) finds the same
    /// records and end as one that unmasks, and leaves the bytes exactly as the file holds them.
    @Test func checkOnlyParseLeavesTheFileBytesAndFindsTheSameRecords() throws {
        var bytes = Self.generation([(.full, Self.payload(300, seed: 1)), (.first, Self.payload(5, seed: 2)), (.last, Self.payload(900, seed: 3))])
        bytes[LogFormat.headerSize + 2 * LogFormat.recordSize(payload: 300) + 40] ^= 0x10 // after the records: zeros no more
        let checked = try LogReader.parse(bytes, path: "edb.log", unmask: false)
        let unmasked = try LogReader.parse(bytes, path: "edb.log")
        #expect(checked.masked && !unmasked.masked)
        #expect(checked.bytes == bytes)
        #expect(checked.fragments.map(\.offset) == unmasked.fragments.map(\.offset))
        #expect(checked.fragments.map(\.payload) == unmasked.fragments.map(\.payload))
        #expect(checked.end == unmasked.end)
        #expect(Array(unmasked.bytes[unmasked.fragments[0].payload]) == Self.payload(300, seed: 1))
    }

    /// The commit scanner reads each transaction's time from its first eight payload bytes,
    /// also when they are split over fragments, and gets the same from a check-only parse as
    /// from an unmasked one.
    @Test func commitScannerReadsTimesFromMaskedAndUnmaskedParsesAlike() throws {
        let a = Self.payload(8, seed: 11) + Self.payload(50, seed: 12)
        let b = Self.payload(30, seed: 13)
        // b's eight time bytes come in fragments of 3, 2 and 3+.
        let records: [(LogFormat.RecordType, [UInt8])] = [
            (.full, a), (.first, Array(b[0..<3])), (.middle, Array(b[3..<5])), (.last, Array(b[5...])),
        ]
        let bytes = Self.generation(records)
        let timeA = try a.withUnsafeBytes { try LogTransaction.commitTime($0, where: "a") }
        let timeB = try b.withUnsafeBytes { try LogTransaction.commitTime($0, where: "b") }
        for unmask in [true, false] {
            var scanner = LogReader.CommitScanner()
            let commits = try scanner.feed(try LogReader.parse(bytes, path: "edb.log", unmask: unmask))
            #expect(commits.map(\.time) == [timeA, timeB], "unmask: \(unmask)")
            #expect(commits.last?.end.offset == UInt32(LogFormat.headerSize + records.map { LogFormat.recordSize(payload: $0.1.count) }.reduce(0, +)))
        }
    }

    /// Fragments out of order (a last with none open, a first inside an open transaction) are
    /// damage to the scanner as to replay; a transaction shorter than its time is malformed.
    @Test(arguments: [[LogFormat.RecordType.full, .last], [.first, .full], [.first, .first]])
    func commitScannerRefusesFragmentsOutOfOrder(types: [LogFormat.RecordType]) throws {
        let bytes = Self.generation(types.map { ($0, Self.payload(20, seed: 7)) })
        for unmask in [true, false] {
            var scanner = LogReader.CommitScanner()
            let g = try LogReader.parse(bytes, path: "edb.log", unmask: unmask)
            let e = #expect(throws: JetError.self) { _ = try scanner.feed(g) }
            #expect(e?.code == .logReadVerifyFailure)
        }
        var scanner = LogReader.CommitScanner()
        #expect(throws: JetError.self) { _ = try scanner.feed(try LogReader.parse(Self.generation([(.full, [1, 2, 3])]), path: "edb.log")) }
    }

    @Test func emptyGenerationEndsCleanlyAfterItsHeader() throws {
        let g = try LogReader.parse(Self.generation([]), path: "edb.log")
        #expect(g.fragments.isEmpty)
        #expect(g.end == .clean(offset: LogFormat.headerSize))
    }

    @Test func recordFillingTheFileEndsCleanlyAtTheEndOfTheFile() throws {
        let n = LogFormat.minimumFileSize - LogFormat.headerSize - LogFormat.recordHeaderSize
        let g = try LogReader.parse(Self.generation([(.full, Self.payload(n, seed: 9))]), path: "edb.log")
        #expect(g.fragments.count == 1 && g.fragments[0].payload.count == n)
        #expect(g.end == .clean(offset: LogFormat.minimumFileSize))
    }

    /// A crash cut the last record: one of its sectors never reached the disk. That is the
    /// end of the log, not damage.
    @Test func truncatedRecordIsTornNotDamaged() throws {
        var bytes = Self.generation([(.full, Self.payload(100, seed: 1)), (.full, Self.payload(2000, seed: 2))])
        let second = LogFormat.headerSize + LogFormat.recordSize(payload: 100)
        let end = second + LogFormat.recordSize(payload: 2000)
        let lastSector = end - end % LogFormat.sectorSize
        for k in lastSector..<end { bytes[k] = 0 }
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(g.fragments.count == 1)
        #expect(g.end == .bad(offset: second, reason: "a record fails its checksum", torn: true))
        #expect(g.endsInTornWrite)
    }

    /// Every sector of the record was written, yet it fails its checksum: damage after the
    /// write, which recovery must report rather than cut off.
    @Test func flippedPayloadByteIsDamageNotTorn() throws {
        var bytes = Self.generation([(.full, Self.payload(100, seed: 1)), (.full, Self.payload(2000, seed: 2))])
        let second = LogFormat.headerSize + LogFormat.recordSize(payload: 100)
        bytes[second + LogFormat.recordHeaderSize + 1500] ^= 0x10
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(g.fragments.count == 1)
        #expect(g.end == .bad(offset: second, reason: "a record fails its checksum", torn: false))
        #expect(!g.endsInTornWrite)
    }

    /// Each byte of a record header is covered: the CRC by the record checksum, length and
    /// type by the header's own 24-bit check. A valid record after it makes it damage.
    @Test(arguments: 0..<12) func flippedRecordHeaderByteIsCaught(offset: Int) throws {
        var bytes = Self.generation([(.full, Self.payload(40, seed: 1)), (.full, Self.payload(40, seed: 2)),
                                     (.full, Self.payload(40, seed: 3))])
        let second = LogFormat.headerSize + LogFormat.recordSize(payload: 40)
        bytes[second + offset] ^= 0x20
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(g.fragments.count == 1)
        let reason = offset < 4 ? "a record fails its checksum" : "a record header fails its check"
        #expect(g.end == .bad(offset: second, reason: reason, torn: false))
        #expect(g.hasValidRecord(after: second))
        #expect(!g.endsInTornWrite)
    }

    @Test func recordRunningPastTheEndOfTheFileIsBad() throws {
        let size = LogFormat.minimumFileSize
        var bytes = Self.generation([(.full, Self.payload(size, seed: 4))], size: size)
        bytes.removeLast(bytes.count - size)
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(g.fragments.isEmpty)
        #expect(g.end == .bad(offset: LogFormat.headerSize, reason: "a record runs past the end of the file", torn: false))
    }

    @Test(arguments: [UInt8(0), 5, 255]) func unknownRecordTypeIsBad(type: UInt8) throws {
        var bytes = Self.generation([(.full, Self.payload(30, seed: 1))])
        let o = LogFormat.headerSize
        bytes[o + 8] = type
        // A consistent header check, so only the type itself is wrong.
        bytes.withUnsafeMutableBytes { p in
            let check = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(o + 4)..<(o + 9)])) & 0xFF_FFFF
            p[o + 9] = UInt8(check & 0xFF); p[o + 10] = UInt8((check >> 8) & 0xFF); p[o + 11] = UInt8(check >> 16)
        }
        let g = try LogReader.parse(bytes, path: "edb.log")
        #expect(g.fragments.isEmpty)
        #expect(g.end == .bad(offset: o, reason: "a record fails its checksum", torn: false))
    }

    // MARK: The chain of generations (checked by recovery)

    /// A generation file whose header names another generation than its file name.
    @Test func wrongGenerationInHeaderIsRefused() throws {
        let (fs, _) = try CorruptionTests.instanceWithLogTail()
        let name = try #require(try fs.list("/inst").filter { FileNames.parseArchivedLog($0) != nil }.sorted().last)
        let named = try #require(FileNames.parseArchivedLog(name))
        try Self.rewriteHeader(fs, "/inst/" + name) { $0.generation = named + 100 }
        let e = CorruptionTests.openError(fs)
        #expect(e?.code == .logReadVerifyFailure)
        #expect(e?.message == "/inst/\(name) holds generation \(named + 100), its name says \(named); restore the instance from a backup")
    }

    /// Each header links to the creation time of the generation before it.
    @Test func brokenCreationTimeLinkIsNotContiguous() throws {
        let (fs, _) = try CorruptionTests.instanceWithLogTail()
        try Self.rewriteHeader(fs, "/inst/edb.log") { $0.previousCreationTime &+= 1 }
        let e = CorruptionTests.openError(fs)
        #expect(e?.code == .givenLogFileIsNotContiguous)
        #expect(e?.message.hasPrefix("log generation /inst/edb.log does not follow generation") == true)
    }

    static func rewriteHeader(_ fs: MemoryFileSystem, _ path: String, _ change: (inout LogFormat.Header) -> Void) throws {
        var bytes = try #require(fs.contents(path))
        var h = try bytes.withUnsafeBytes { try LogFormat.Header.decode($0, file: path) }
        change(&h)
        bytes.replaceSubrange(0..<LogFormat.headerSize, with: h.encode())
        fs.setContents(path, bytes)
    }
}
