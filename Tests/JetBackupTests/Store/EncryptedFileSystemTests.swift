import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The file system of an encrypted repository: what goes in comes back at any offset, what is
/// stored is ciphertext, and a file cut, extended or changed on disk is refused when it is read.
@Suite struct EncryptedFileSystemTests {
    static func bytes(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 9) } }

    /// Writes `plain` the way the image pipeline does: chunks of `piece` bytes, several in
    /// flight, so they reach the file out of order.
    static func writeOutOfOrder(_ f: any StorageFile, _ plain: [UInt8], piece: Int) throws {
        var offsets = Array(stride(from: 0, to: plain.count, by: piece))
        // Swap neighbours: every second write arrives before the one it follows.
        for i in stride(from: 0, to: offsets.count - 1, by: 2) { offsets.swapAt(i, i + 1) }
        for o in offsets {
            try plain.withUnsafeBytes { try f.write(at: Int64(o), UnsafeRawBufferPointer(rebasing: $0[o..<min(plain.count, o + piece)])) }
        }
    }

    @Test func filesWrittenOutOfOrderReadBackAtAnyOffsetAndAreCiphertextOnDisk() throws {
        let s = Scratch()
        let efs = EncryptedFileSystem(base: s.fs, key: DataKey.generate(), chunkSize: 100)
        let plain = Self.bytes(1234)
        let f = try efs.open(s.path("a.edb"), .createNewDirect)
        try Self.writeOutOfOrder(f, plain, piece: 37)
        #expect(try f.size() == 1234)
        try f.sync()
        f.close()
        let stored = try s.fs.readAll(s.path("a.edb"))
        #expect(Array(stored.prefix(8)) == Array("JBCRYPT1".utf8))
        #expect(stored.count == EncryptedStream.headerSize + 1234 + 13 * AESGCM.tagSize)
        #expect(try efs.readAll(s.path("a.edb")) == plain)
        let r = try efs.open(s.path("a.edb"), .readOnly)
        defer { r.close() }
        #expect(try r.size() == 1234)
        for (at, n) in [(0, 1), (99, 2), (150, 400), (1199, 100), (1233, 5), (1300, 4)] {
            var buf = [UInt8](repeating: 0, count: n)
            let got = try buf.withUnsafeMutableBytes { try r.read(at: Int64(at), into: $0) }
            let want = at >= plain.count ? [] : Array(plain[at..<min(plain.count, at + n)])
            #expect(Array(buf.prefix(got)) == want, "read at \(at)")
        }
        // The files that must be read before the key is known stay plain.
        try efs.writeAtomically(s.path(Repository.markerName), Array("plain".utf8))
        #expect(try s.fs.readAll(s.path(Repository.markerName)) == Array("plain".utf8))
    }

    @Test func aFileCutExtendedOrChangedOnDiskIsRefusedWhenOpenedOrRead() throws {
        let s = Scratch()
        let key = DataKey.generate()
        let efs = EncryptedFileSystem(base: s.fs, key: key, chunkSize: 100)
        let plain = Self.bytes(500)
        try efs.writeAtomically(s.path("f"), plain)
        let stored = try s.fs.readAll(s.path("f"))
        let sealed = 100 + AESGCM.tagSize
        func refused(_ bytes: [UInt8], _ what: String) throws {
            try s.fs.writeAtomically(s.path("f"), bytes)
            #expect(throws: JetError.self, "\(what)") { _ = try efs.readAll(s.path("f")) }
            do { _ = try efs.readAll(s.path("f")) } catch let e as JetError { #expect(e.code == .databaseCorrupted, "\(what): \(e)") }
        }
        // Cut at a chunk boundary: the last chunk left was not sealed as the final one.
        try refused(Array(stored.prefix(EncryptedStream.headerSize + 4 * sealed)), "cut at a chunk boundary")
        try refused(Array(stored.prefix(EncryptedStream.headerSize + 10)), "cut inside the first chunk")
        try refused(stored + [0], "a byte appended")
        var changed = stored
        changed[EncryptedStream.headerSize + sealed + 5] ^= 1
        try refused(changed, "a byte changed in chunk 1")
        try refused(plain, "a plain file where an encrypted one belongs")
        // Another repository's key.
        try s.fs.writeAtomically(s.path("f"), stored)
        #expect(throws: JetError.self) { _ = try EncryptedFileSystem(base: s.fs, key: DataKey.generate()).readAll(s.path("f")) }
        #expect(try efs.readAll(s.path("f")) == plain)
        #expect(throws: JetError.self) { _ = try efs.open(s.path("f"), .readWrite) }
    }
}
