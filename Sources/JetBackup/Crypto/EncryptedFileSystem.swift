#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// The files of an encrypted repository: every file written through this file system is
/// stored in the `EncryptedStream` format under the repository's data key, and read back
/// decrypted and authenticated chunk by chunk (random reads decrypt only the chunks they
/// touch). The exceptions are the files that must be read before the key is known or are
/// changed in place: the repository marker (which holds the wrapped key), the locks and the
/// repository's event log. Sizes are the plaintext's, so manifests and checks see the same
/// files as in a plain repository.
public final class EncryptedFileSystem: FileSystem, @unchecked Sendable {
    public let base: any FileSystem
    let key: DataKey
    /// Plaintext bytes per chunk of a new file (a reader takes it from the file's header).
    let chunkSize: Int

    static let plainNames: Set<String> = [Repository.markerName, Repository.markerName + ".tmp", Repository.lockName,
                                          Repository.eventsName, BackupSetLayout.lock]

    public init(base: any FileSystem, key: DataKey, chunkSize: Int = EncryptedStream.defaultChunkSize) {
        self.base = base
        self.key = key
        self.chunkSize = chunkSize
    }

    static func isPlain(_ path: String) -> Bool { plainNames.contains(FilePaths.lastComponent(path)) }

    public func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
        if Self.isPlain(path) { return try base.open(path, mode) }
        switch mode {
        case .readOnly:
            return try EncryptedReadFile(inner: try base.open(path, .readOnly), key: key, path: path)
        case .createNew, .createNewDirect:
            // Ciphertext is not page-aligned: never direct.
            return EncryptedWriteFile(inner: try base.open(path, .createNew), key: key, chunkSize: chunkSize, path: path)
        case .createOrTruncate:
            return EncryptedWriteFile(inner: try base.open(path, .createOrTruncate), key: key, chunkSize: chunkSize, path: path)
        case .readWrite, .readWriteDirect:
            throw JetError(.invalidParameter, "\(path) is encrypted and written once; it cannot be changed in place")
        }
    }

    public func exists(_ path: String) -> Bool { base.exists(path) }
    public func isDirectory(_ path: String) -> Bool { base.isDirectory(path) }
    public func isSymlink(_ path: String) -> Bool { base.isSymlink(path) }
    public func list(_ directory: String) throws -> [String] { try base.list(directory) }
    public func remove(_ path: String) throws { try base.remove(path) }
    public func removeDirectory(_ path: String) throws { try base.removeDirectory(path) }
    public func rename(_ from: String, _ to: String) throws { try base.rename(from, to) }
    public func createDirectory(_ path: String) throws { try base.createDirectory(path) }
    public func syncDirectory(_ path: String) throws { try base.syncDirectory(path) }
    public func lock(_ path: String, owner: String) throws -> any FileLock { try base.lock(path, owner: owner) }
    public func canonicalPath(_ path: String) -> String { base.canonicalPath(path) }
    public func isWritableDirectory(_ path: String) -> Bool { base.isWritableDirectory(path) }
}

/// A new encrypted file: plaintext in (in order; writes ahead are held), ciphertext out to
/// the inner file front to back. `sync` seals the final chunk, then syncs the inner file.
final class EncryptedWriteFile: StorageFile, @unchecked Sendable {
    let path: String
    private let inner: any StorageFile
    private let lock = Lock()
    private var order = InOrderWrites()
    private var encryptor: StreamEncryptor!
    private final class Position: @unchecked Sendable { var offset: Int64 = 0 }
    private let written = Position()
    private var sealed = false

    init(inner: any StorageFile, key: DataKey, chunkSize: Int, path: String) {
        self.inner = inner
        self.path = path
        let (inner, written) = (inner, written)
        encryptor = StreamEncryptor(key: key, chunkSize: chunkSize) { bytes in
            try inner.write(at: written.offset, bytes)
            written.offset += Int64(bytes.count)
        }
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        throw JetError(.invalidParameter, "\(path) is being written encrypted and cannot be read yet")
    }

    func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            guard !sealed else { throw JetError(.invalidParameter, "\(path) was already sealed") }
            let e = encryptor!
            try order.write(at: offset, bytes, path: path) { try e.write($0) }
        }
    }

    func sync() throws {
        try lock.withLock {
            if !sealed {
                guard order.isComplete else { throw JetError(.invalidParameter, "\(path) has a gap before offset \(order.next)") }
                try encryptor.finish()
                sealed = true
            }
        }
        try inner.sync()
    }

    func size() throws -> Int64 { lock.withLock { order.next } }

    func truncate(to size: Int64) throws {
        guard size == (try self.size()) else { throw JetError(.invalidParameter, "\(path) is encrypted front to back and cannot be truncated") }
    }

    func close() { inner.close() }

    func startWriteback(offset: Int64, length: Int) {
        inner.startWriteback(offset: 0, length: Int(written.offset))
    }
}

/// An encrypted file read at any offset: the header is checked and the final chunk
/// authenticated when the file is opened (so a file cut at a chunk boundary, or bytes
/// appended, fail at once and `size` is trustworthy); other chunks are authenticated as they
/// are read, one kept decrypted.
final class EncryptedReadFile: ReadOnlyStorageFile, @unchecked Sendable {
    let path: String
    private let inner: any StorageFile
    private let gcm: AESGCM
    private let header: [UInt8]
    private let chunkSize: Int
    private let body: Int64
    private let chunks: Int64
    private let plainSize: Int64
    private let lock = Lock()
    private var cachedIndex: Int64 = -1
    private var cached: [UInt8] = []

    init(inner: any StorageFile, key: DataKey, path: String) throws {
        self.inner = inner
        self.path = path
        gcm = AESGCM(key: key.bytes)
        do {
            let total = try inner.size()
            var h = [UInt8](repeating: 0, count: EncryptedStream.headerSize)
            let got = try h.withUnsafeMutableBytes { try inner.read(at: 0, into: $0) }
            guard got == h.count, Array(h.prefix(8)) == EncryptedStream.magic else {
                throw JetError(.databaseCorrupted, "\(path) is not an encrypted file of this format (no JBCRYPT1 header): "
                               + "it was written without encryption, or cut, or replaced")
            }
            guard h[8] == 0 && h[9] == UInt8(EncryptedStream.version) else {
                throw JetError(.databaseCorrupted, "\(path): encrypted format version \(Int(h[8]) << 8 | Int(h[9])) is not one this build reads")
            }
            let c = Int(h[12]) << 24 | Int(h[13]) << 16 | Int(h[14]) << 8 | Int(h[15])
            guard c > 0 && c <= 64 << 20 else {
                throw JetError(.databaseCorrupted, "\(path): encrypted file header names a chunk size of \(c) bytes")
            }
            header = h
            chunkSize = c
            body = total - Int64(EncryptedStream.headerSize)
            let sealed = Int64(c + AESGCM.tagSize)
            chunks = max(1, (body + sealed - 1) / sealed)
            let last = body - (chunks - 1) * sealed
            guard body >= Int64(AESGCM.tagSize), last >= Int64(AESGCM.tagSize) else {
                throw JetError(.databaseCorrupted, "\(path): encrypted file cut short (\(total) bytes)")
            }
            plainSize = body - chunks * Int64(AESGCM.tagSize)
            try lock.withLock { try load(chunks - 1) }
        } catch {
            inner.close()
            throw error
        }
    }

    /// Decrypts chunk `i` into the cache (caller holds the lock).
    private func load(_ i: Int64) throws {
        if cachedIndex == i { return }
        let sealed = Int64(chunkSize + AESGCM.tagSize)
        let at = Int64(EncryptedStream.headerSize) + i * sealed
        let n = Int(min(sealed, body - i * sealed))
        var c = [UInt8](repeating: 0, count: n)
        let got = try c.withUnsafeMutableBytes { try inner.read(at: at, into: $0) }
        guard got == n else { throw JetError(.databaseCorrupted, "\(path): encrypted chunk \(i) cut short") }
        let plain = c.withUnsafeBytes {
            gcm.open($0, nonce: EncryptedStream.nonce(header[16...], UInt64(i)), aad: EncryptedStream.aad(header, UInt64(i), final: i == chunks - 1))
        }
        guard let plain else {
            throw JetError(.databaseCorrupted, "\(path): encrypted chunk \(i) fails authentication: the file was changed, cut "
                           + "or reordered, or the key is not this repository's")
        }
        cached = plain
        cachedIndex = i
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try lock.withLock {
            var done = 0
            while done < buffer.count {
                let at = offset + Int64(done)
                if at >= plainSize { break }
                let i = at / Int64(chunkSize)
                try load(i)
                let from = Int(at - i * Int64(chunkSize))
                let n = min(buffer.count - done, cached.count - from)
                guard n > 0 else { break }
                cached.withUnsafeBytes { (buffer.baseAddress! + done).copyMemory(from: $0.baseAddress! + from, byteCount: n) }
                done += n
            }
            return done
        }
    }

    func size() throws -> Int64 { plainSize }
    func close() { inner.close() }
    func willNeed(offset: Int64, length: Int) {}
}
