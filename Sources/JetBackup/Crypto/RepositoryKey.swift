import COpenSSL
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A repository's data key: 32 random bytes that encrypt every stored file. `description`
/// never shows it.
public struct DataKey: Sendable, CustomStringConvertible {
    let bytes: [UInt8]
    init(bytes: [UInt8]) { self.bytes = bytes }
    public static func generate() -> DataKey { DataKey(bytes: AESGCM.random(AESGCM.keySize)) }
    public var description: String { "DataKey(hidden)" }
}

/// The key record kept in an encrypted repository's marker: the data key wrapped (AES-256-GCM)
/// by a key derived from the passphrase with scrypt, and the scrypt parameters and salt that
/// derive it again. Changing the passphrase rewraps the data key; no stored file changes.
///
///     {"format":"jetbackup-key","version":1,"kdf":"scrypt","n":32768,"r":8,"p":1,
///      "salt":"<hex 16>","nonce":"<hex 12>","wrapped":"<hex 48: key and tag>"}
public struct RepositoryKey: Codable, Sendable, Equatable {
    public var format = "jetbackup-key"
    public var version = 1
    public var kdf = "scrypt"
    public var n: UInt64
    public var r: UInt64
    public var p: UInt64
    public var salt: String
    public var nonce: String
    public var wrapped: String

    /// scrypt's cost: 2^15 × 8 × 128 bytes = 32 MiB and about 0.1 s per derivation.
    public static let defaultCost: (n: UInt64, r: UInt64, p: UInt64) = (1 << 15, 8, 1)
    static let aad = Array("jetbackup-key v1".utf8)

    /// Wraps `key` under `passphrase` with a new salt and nonce.
    public static func wrap(_ key: DataKey, passphrase: [UInt8], cost: (n: UInt64, r: UInt64, p: UInt64) = defaultCost) throws -> RepositoryKey {
        let salt = AESGCM.random(16), nonce = AESGCM.random(AESGCM.nonceSize)
        let kek = try derive(passphrase, salt: salt, n: cost.n, r: cost.r, p: cost.p)
        let sealed = key.bytes.withUnsafeBytes { AESGCM(key: kek).seal($0, nonce: nonce, aad: aad) }
        return RepositoryKey(n: cost.n, r: cost.r, p: cost.p, salt: Digest.hex(salt), nonce: Digest.hex(nonce), wrapped: Digest.hex(sealed))
    }

    /// The data key, or JET_errPermissionDenied when the passphrase does not open it.
    public func unwrap(passphrase: [UInt8]) throws -> DataKey {
        guard format == "jetbackup-key", version == 1, kdf == "scrypt", let salt = Self.unhex(salt), let nonce = Self.unhex(nonce),
              nonce.count == AESGCM.nonceSize, let sealed = Self.unhex(wrapped), sealed.count == AESGCM.keySize + AESGCM.tagSize else {
            throw JetError(.databaseCorrupted, "the repository's key record is damaged or of an unknown format")
        }
        let kek = try Self.derive(passphrase, salt: salt, n: n, r: r, p: p)
        guard let key = sealed.withUnsafeBytes({ AESGCM(key: kek).open($0, nonce: nonce, aad: Self.aad) }) else {
            throw JetError(.permissionDenied, "the key file's passphrase does not open this repository's key")
        }
        return DataKey(bytes: key)
    }

    /// The same data key under a new passphrase (and a new salt).
    public func rewrap(old: [UInt8], new: [UInt8]) throws -> RepositoryKey {
        try Self.wrap(try unwrap(passphrase: old), passphrase: new, cost: (n, r, p))
    }

    public func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array(try e.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> RepositoryKey {
        do { return try JSONDecoder().decode(RepositoryKey.self, from: Data(bytes)) } catch {
            throw JetError(.databaseCorrupted, "the repository's key record is not readable: \(error)")
        }
    }

    /// The passphrase in a key file: its bytes without one trailing newline. An empty one is refused.
    public static func passphrase(fromKeyFile path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JetError(.fileNotFound, "key file \(path) cannot be read")
        }
        var p = Array(data)
        if p.last == 10 { p.removeLast() }
        if p.last == 13 { p.removeLast() }
        guard !p.isEmpty else { throw JetError(.invalidParameter, "key file \(path) is empty; it must hold a passphrase") }
        return p
    }

    static func derive(_ passphrase: [UInt8], salt: [UInt8], n: UInt64, r: UInt64, p: UInt64) throws -> [UInt8] {
        guard n >= 2, n & (n - 1) == 0, n <= 1 << 22, (1...32).contains(r), (1...16).contains(p) else {
            throw JetError(.databaseCorrupted, "the repository's key record has scrypt parameters out of range (n \(n), r \(r), p \(p))")
        }
        LibCrypto.ready
        var out = [UInt8](repeating: 0, count: AESGCM.keySize)
        let maxmem = 128 * r * n * p + 128 * r * n + (1 << 20)
        let ok = passphrase.withUnsafeBytes { pw in
            EVP_PBE_scrypt(pw.baseAddress?.assumingMemoryBound(to: CChar.self), pw.count, salt, salt.count, n, r, p, maxmem, &out, out.count)
        }
        guard ok == 1 else { throw JetError(.invalidParameter, "scrypt could not derive a key (n \(n), r \(r), p \(p))") }
        return out
    }

    static func unhex(_ s: String) -> [UInt8]? {
        let c = Array(s.utf8)
        guard c.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(c.count / 2)
        for i in stride(from: 0, to: c.count, by: 2) {
            guard let b = UInt8(String(decoding: c[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
        }
        return out
    }
}
