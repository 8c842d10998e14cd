import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// A backup does not write the whole pages of zeros a log generation ends with (the unused
/// end of the generation every backup's roll finishes early): the copy is extended past what
/// was written, a hole. The set's file holds the same bytes, with the same checksums, and
/// restores the same.
@Suite struct LogCopyHoleTests {
    private static let page = FileBytes.pageAlignment

    private static func bytes(_ pages: [UInt8?]) -> [UInt8] {
        // Each page: nil = zeros, a byte = that byte first, the rest zeros.
        pages.flatMap { b -> [UInt8] in
            var p = [UInt8](repeating: 0, count: page)
            if let b { p[0] = b }
            return p
        }
    }

    @Test func onlyWholePagesOfZerosAtTheEndAreLeftOut() {
        let cases: [([UInt8], Int)] = [
            (Self.bytes([1, 2, nil, nil]), 2 * Self.page),
            (Self.bytes([1, nil, 3, nil]), 3 * Self.page),  // zeros in the middle stay
            (Self.bytes([1, 2, 3, 4]), 4 * Self.page),
            (Self.bytes([nil, nil, nil]), Self.page),        // never the first page
            (Self.bytes([1, nil]) + [0, 0, 0], 2 * Self.page + 3), // not whole pages: all of it
        ]
        for (b, want) in cases {
            let got = b.withUnsafeBytes { LogCopier.lengthBeforeZeroPages($0, page: Self.page) }
            #expect(got == want, "\(b.count) bytes: \(got), want \(want)")
        }
        // A zero page whose last byte is not zero is kept.
        var b = Self.bytes([1, nil, nil])
        b[b.count - 1] = 9
        #expect(b.withUnsafeBytes { LogCopier.lengthBeforeZeroPages($0, page: Self.page) } == b.count)
    }

    @Test func aPosixFileGetsAHoleAndOnlyAtItsEnd() throws {
        let s = Scratch()
        defer { s.remove() }
        let fs = PosixFileSystem()
        let f = try fs.open(s.path("f"), .createNew)
        defer { f.close() }
        let data = [UInt8](repeating: 7, count: Self.page)
        try data.withUnsafeBytes { try f.write(at: 0, $0) }
        #expect(throws: JetError.self) { try f.appendZeros(at: 0, count: Self.page) }
        try f.appendZeros(at: Int64(Self.page), count: 64 * Self.page)
        try f.sync()
        #expect(try f.size() == Int64(65 * Self.page))
        let back = try fs.readAll(s.path("f"))
        #expect(Array(back[..<Self.page]) == data && back[Self.page...].allSatisfy { $0 == 0 })
        if Self.holesKept(s.path(".")) {
            #expect(Self.allocated(s.path("f")) < 65 * Self.page, "the zeros were written: \(Self.allocated(s.path("f"))) bytes allocated")
        }
    }

    /// A file system without holes (here the in-memory one, as an encrypted or uploaded file)
    /// gets the zeros written.
    @Test func otherFileSystemsGetTheZerosWritten() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/d")
        let f = try fs.open("/d/f", .createNew)
        try [UInt8](repeating: 5, count: 10).withUnsafeBytes { try f.write(at: 0, $0) }
        try f.appendZeros(at: 10, count: 3 << 20)
        try f.sync()
        f.close()
        let back = try fs.readAll("/d/f")
        #expect(back.count == 10 + 3 << 20 && back[..<10].allSatisfy { $0 == 5 } && back[10...].allSatisfy { $0 == 0 })
    }

    /// An incremental, in this process or through the owner: every copied generation equals
    /// the instance's, and the last one (finished early by the backup's roll) is a hole past
    /// its records; the set restores to what the instance held.
    static func run(throughOwner: Bool) throws {
        let s = Scratch()
        defer { s.remove() }
        let (_, inst, set) = try SetPrefetchTests.setWithAFullBackup(s, serveControl: throughOwner)
        let sum = try SetPrefetchTests.run(inst, SetPrefetchTests.options(set), throughOwner: throughOwner)
        let gens = try #require(sum.generationsCopied)
        // Each copy as the set holds it agrees with the manifest's size and checksums.
        let manifest = try BackupManifest.decode(try PosixFileSystem().readAll(FilePaths.join(set, BackupSetLayout.manifest)), path: set)
        for g in gens {
            let name = FileNames.archivedLog(g)
            let file = try #require(manifest.files.first { $0.name == name })
            let stored = try PosixFileSystem().readAll(FilePaths.join(set, name))
            #expect(Int64(stored.count) == file.size && stored.withUnsafeBytes { CRC32C.checksum($0) } == file.crc32c,
                    "\(name) does not match the manifest")
            let sha = SHA256Hasher()
            stored.withUnsafeBytes { sha.update($0) }
            #expect(sha.finalizeHex() == file.sha256, "\(name)'s SHA-256 differs from the manifest's")
        }
        let last = FilePaths.join(set, FileNames.archivedLog(gens.upperBound))
        let bytes = try PosixFileSystem().readAll(last)
        let used = bytes.withUnsafeBytes { LogCopier.lengthBeforeZeroPages($0, page: Self.page) }
        #expect(used < bytes.count, "the last generation was full (\(used) of \(bytes.count) bytes used)")
        if Self.holesKept(set) {
            #expect(Self.allocated(last) <= used + Self.page, "\(Self.allocated(last)) bytes allocated for \(used) used")
        }
        try SetPrefetchTests.closeAndRestore(inst, set, s)
    }

    @Test func anIncrementalLeavesAHoleAfterTheLastRecords() throws { try Self.run(throughOwner: false) }

    @Test func throughAnOwnerToo() throws { try Self.run(throughOwner: true) }

    /// True if the file system of `dir` keeps holes (a file extended by 1 MiB allocates
    /// nothing): where it does not, only the bytes and checksums are checked.
    static func holesKept(_ dir: String) -> Bool {
        let p = dir + "/.hole-probe"
        defer { unlink(p) }
        let fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard ftruncate(fd, 1 << 20) == 0 else { return false }
        let kept = allocated(p) == 0
        if !kept { print("note: \(dir) does not keep holes; only bytes and checksums are checked") }
        return kept
    }

    /// Bytes the file system allocated for a file (st_blocks × 512).
    static func allocated(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return -1 }
        return Int(st.st_blocks) * 512
    }
}
