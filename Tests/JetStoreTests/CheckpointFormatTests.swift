import Testing
@testable import JetStore

/// The checkpoint file edb.chk (Checkpoint in LogFormat.swift, CheckpointFile): one copy
/// round-trips and rejects any damage; of the two copies the valid one with the higher
/// sequence wins.
@Suite struct CheckpointFormatTests {
    static let path = "/i/edb.chk"

    static func checkpoint(_ sequence: UInt64) -> Checkpoint {
        Checkpoint(sequence: sequence, logSignature: Signature(random: 0xA1B2_C3D4_E5F6_0718, time: 1_700_000_000_000_009),
                   position: LogPosition(generation: 0x0000_0102, offset: UInt32(4096 + 8 * (sequence % 100))),
                   time: 1_800_000_000_000_000 &+ sequence)
    }

    static func decodeCopy(_ bytes: [UInt8]) -> Checkpoint? { bytes.withUnsafeBytes { Checkpoint.decodeCopy($0) } }

    static func fs(_ contents: [UInt8]? = nil) -> MemoryFileSystem {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i")
        if let c = contents { fs.setContents(path, c) }
        return fs
    }

    static func read(_ fs: MemoryFileSystem) throws -> (Checkpoint, damagedCopies: Int) {
        try CheckpointFile.read(fs: fs, path: path)
    }

    static func readError(_ fs: MemoryFileSystem) -> JetError? {
        do { _ = try read(fs); return nil } catch let e as JetError { return e } catch { return JetError(.diskIO, "\(error)") }
    }

    // MARK: One copy

    @Test func copyRoundTripPreservesEveryField() throws {
        let cp = Checkpoint(sequence: .max, logSignature: Signature(random: 1, time: .max),
                            position: LogPosition(generation: 0xFFFF_FFFE, offset: 0x1234_5678), time: 42)
        let bytes = cp.encodeCopy()
        #expect(bytes.count == Checkpoint.copySize)
        #expect(Array(bytes[0..<8]) == Array("JETCHK01".utf8))
        let back = try #require(Self.decodeCopy(bytes))
        #expect(back == cp)
        #expect(back.position.generation == 0xFFFF_FFFE && back.position.offset == 0x1234_5678 && back.time == 42)
    }

    /// Magic, fields and CRC: a flip in any of the 52 bytes makes the copy invalid.
    @Test func everyFlippedByteOfACopyIsRejected() {
        var bytes = Self.checkpoint(3).encodeCopy()
        var accepted: [Int] = []
        for offset in 0..<52 {
            bytes[offset] ^= 0x02
            if Self.decodeCopy(bytes) != nil { accepted.append(offset) }
            bytes[offset] ^= 0x02
        }
        #expect(accepted.isEmpty)
        #expect(Self.decodeCopy(bytes) == Self.checkpoint(3))
    }

    @Test(arguments: [0, 8, 51]) func copyShorterThanItsFieldsIsRejected(length: Int) {
        #expect(Self.decodeCopy(Array(Self.checkpoint(3).encodeCopy().prefix(length))) == nil)
        #expect(Self.decodeCopy(Array(Self.checkpoint(3).encodeCopy().prefix(52))) == Self.checkpoint(3))
    }

    // MARK: The file: two copies

    @Test func fileRoundTripWritesTwoEqualCopies() throws {
        let fs = Self.fs()
        try CheckpointFile.write(fs: fs, path: Self.path, Self.checkpoint(5))
        let bytes = try #require(fs.contents(Self.path))
        #expect(bytes == Self.checkpoint(5).encodeCopy() + Self.checkpoint(5).encodeCopy())
        let (cp, damaged) = try Self.read(fs)
        #expect(cp == Self.checkpoint(5) && damaged == 0)
        // A later write replaces both copies in place.
        try CheckpointFile.write(fs: fs, path: Self.path, Self.checkpoint(6))
        #expect(fs.contents(Self.path) == Self.checkpoint(6).encodeCopy() + Self.checkpoint(6).encodeCopy())
    }

    /// A write stopped between its two fsyncs leaves copy A newer than copy B. The reader does
    /// not lean on that order: whichever valid copy has the higher sequence wins.
    @Test(arguments: [(UInt64(9), UInt64(8)), (8, 9), (1, .max)])
    func checkpointPicksNewestValidCopy(a: UInt64, b: UInt64) throws {
        let fs = Self.fs(Self.checkpoint(a).encodeCopy() + Self.checkpoint(b).encodeCopy())
        let (cp, damaged) = try Self.read(fs)
        #expect(cp == Self.checkpoint(max(a, b)) && damaged == 0)
    }

    /// A damaged copy is skipped even when its sequence would be the higher one.
    @Test(arguments: [0, 1]) func damagedCopyIsSkipped(copy: Int) throws {
        var bytes = Self.checkpoint(copy == 0 ? 9 : 8).encodeCopy() + Self.checkpoint(copy == 0 ? 8 : 9).encodeCopy()
        bytes[copy * Checkpoint.copySize + 20] ^= 0x01
        let (cp, damaged) = try Self.read(Self.fs(bytes))
        #expect(cp == Self.checkpoint(8) && damaged == 1)
    }

    @Test func fileCutAfterTheFirstCopyUsesIt() throws {
        let whole = Self.checkpoint(4).encodeCopy() + Self.checkpoint(4).encodeCopy()
        for length in [Checkpoint.copySize, 2 * Checkpoint.copySize - 1] {
            let (cp, damaged) = try Self.read(Self.fs(Array(whole.prefix(length))))
            #expect(cp == Self.checkpoint(4) && damaged == 1)
        }
    }

    @Test func bothCopiesDamagedIsCheckpointCorrupt() {
        var bytes = Self.checkpoint(4).encodeCopy() + Self.checkpoint(5).encodeCopy()
        bytes[48] ^= 0x01
        bytes[Checkpoint.copySize] ^= 0x01
        #expect(Self.readError(Self.fs(bytes)) == JetError(.checkpointCorrupt,
            "both copies of the checkpoint /i/edb.chk are damaged; restore the instance from a backup"))
        #expect(Self.readError(Self.fs([])) == JetError(.checkpointCorrupt,
            "both copies of the checkpoint /i/edb.chk are damaged; restore the instance from a backup"))
    }

    @Test func missingFileIsCheckpointCorrupt() {
        #expect(Self.readError(Self.fs()) == JetError(.checkpointCorrupt,
            "the checkpoint file /i/edb.chk is missing; the instance cannot know where crash recovery starts: restore it from a backup"))
    }
}
