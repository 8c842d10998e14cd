import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The chunked AES-256-GCM stream and the passphrase-wrapped key record: round trips, and
/// every kind of tampering an attacker with write access to the store could try.
@Suite struct EncryptionTests {
    static let cheap: (n: UInt64, r: UInt64, p: UInt64) = (1 << 10, 8, 1)

    static func bytes(_ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) } }

    @Test(arguments: [0, 1, 63, 64, 65, 640, 1000])
    func streamRoundTripsAtEverySizeAroundChunkBoundaries(_ n: Int) throws {
        let key = DataKey.generate()
        let plain = Self.bytes(n)
        // Written in odd pieces, read back in other odd pieces.
        var sealed: [UInt8] = []
        let e = StreamEncryptor(key: key, chunkSize: 64) { sealed.append(contentsOf: $0) }
        var at = 0
        while at < n { let k = min(7, n - at); try e.write(Array(plain[at..<(at + k)])); at += k }
        try e.finish()
        #expect(sealed.count == EncryptedStream.headerSize + n + max(1, (n + 63) / 64) * 16)
        var out: [UInt8] = []
        let d = StreamDecryptor(key: key, name: "f") { out.append(contentsOf: $0) }
        at = 0
        while at < sealed.count { let k = min(13, sealed.count - at); try d.push(Array(sealed[at..<(at + k)])); at += k }
        try d.finish()
        #expect(out == plain)
        // Two encryptions of the same bytes differ (a fresh nonce prefix per file).
        #expect(try StreamEncryptor.seal(plain, key: key, chunkSize: 64) != sealed)
    }

    @Test func everyFlippedByteIsDetected() throws {
        let key = DataKey.generate()
        let sealed = try StreamEncryptor.seal(Self.bytes(150), key: key, chunkSize: 64)
        for i in 0..<sealed.count {
            for bit in [0, 7] {
                var bad = sealed
                bad[i] ^= UInt8(1 << bit)
                expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(bad, key: key, name: "f") }
            }
        }
    }

    @Test func truncationAnywhereAndTrailingBytesAreDetected() throws {
        let key = DataKey.generate()
        let sealed = try StreamEncryptor.seal(Self.bytes(128), key: key, chunkSize: 64)  // two full chunks, the second final
        for cut in 0..<sealed.count {
            expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(Array(sealed.prefix(cut)), key: key, name: "f") }
        }
        expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(sealed + [0], key: key, name: "f") }
    }

    @Test func swappedOrForeignChunksAreDetected() throws {
        let key = DataKey.generate()
        let h = EncryptedStream.headerSize, c = 64 + 16
        let a = try StreamEncryptor.seal(Self.bytes(200), key: key, chunkSize: 64)
        var swapped = a
        swapped.replaceSubrange(h..<(h + c), with: a[(h + c)..<(h + 2 * c)])
        swapped.replaceSubrange((h + c)..<(h + 2 * c), with: a[h..<(h + c)])
        expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(swapped, key: key, name: "f") }
        // The same chunk position from another file under the same key.
        let b = try StreamEncryptor.seal(Self.bytes(200).reversed(), key: key, chunkSize: 64)
        var mixed = a
        mixed.replaceSubrange(h..<(h + c), with: b[h..<(h + c)])
        expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(mixed, key: key, name: "f") }
        // A wrong data key opens nothing.
        expectJetError(.databaseCorrupted) { _ = try StreamDecryptor.open(a, key: DataKey.generate(), name: "f") }
    }

    @Test func keyRecordRoundTripsAndRefusesAWrongPassphrase() throws {
        let key = DataKey.generate()
        let record = try RepositoryKey.wrap(key, passphrase: Array("correct horse".utf8), cost: Self.cheap)
        let again = try RepositoryKey.decode(try record.encoded())
        #expect(again == record)
        #expect(try again.unwrap(passphrase: Array("correct horse".utf8)).bytes == key.bytes)
        expectJetError(.permissionDenied) { _ = try again.unwrap(passphrase: Array("correct horsf".utf8)) }
        #expect(!"\(key)".contains(Digest.hex(key.bytes)))
        // A changed wrapped key or salt fails as a wrong passphrase would; a damaged record is corrupt.
        var bad = record
        bad.salt = String(bad.salt.reversed())
        expectJetError(.permissionDenied) { _ = try bad.unwrap(passphrase: Array("correct horse".utf8)) }
        bad = record
        bad.wrapped = "zz"
        expectJetError(.databaseCorrupted) { _ = try bad.unwrap(passphrase: Array("correct horse".utf8)) }
        bad = record
        bad.n = 1 << 40
        expectJetError(.databaseCorrupted) { _ = try bad.unwrap(passphrase: Array("correct horse".utf8)) }
    }

    @Test func changingThePassphraseKeepsDataReadable() throws {
        let key = DataKey.generate()
        let sealed = try StreamEncryptor.seal(Self.bytes(500), key: key, chunkSize: 64)
        let old = try RepositoryKey.wrap(key, passphrase: Array("old".utf8), cost: Self.cheap)
        let new = try old.rewrap(old: Array("old".utf8), new: Array("new".utf8))
        #expect(new.salt != old.salt && new.wrapped != old.wrapped)
        expectJetError(.permissionDenied) { _ = try new.unwrap(passphrase: Array("old".utf8)) }
        let reopened = try new.unwrap(passphrase: Array("new".utf8))
        #expect(try StreamDecryptor.open(sealed, key: reopened, name: "f") == Self.bytes(500))
        expectJetError(.permissionDenied) { _ = try old.rewrap(old: Array("wrong".utf8), new: Array("x".utf8)) }
    }

    @Test func keyFileGivesThePassphraseWithoutItsNewline() throws {
        let s = Scratch("key")
        try "pass phrase\n".write(toFile: s.path("k"), atomically: true, encoding: .utf8)
        #expect(try RepositoryKey.passphrase(fromKeyFile: s.path("k")) == Array("pass phrase".utf8))
        try "\n".write(toFile: s.path("e"), atomically: true, encoding: .utf8)
        expectJetError(.invalidParameter) { _ = try RepositoryKey.passphrase(fromKeyFile: s.path("e")) }
        expectJetError(.fileNotFound) { _ = try RepositoryKey.passphrase(fromKeyFile: s.path("missing")) }
    }

    @Test func defaultScryptCostDerivesWithinASecond() throws {
        let start = Date()
        let r = try RepositoryKey.wrap(DataKey.generate(), passphrase: Array("p".utf8))
        #expect(r.n == 1 << 15 && r.r == 8 && r.p == 1)
        #expect(Date().timeIntervalSince(start) < 5)
    }
}
