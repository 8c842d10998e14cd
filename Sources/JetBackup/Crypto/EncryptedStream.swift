import JetStore

/// The encrypted form of every stored file of an encrypted repository (images, logs,
/// manifest, sums), written and read as a stream with one chunk in memory.
///
///     header (24 bytes): "JBCRYPT1" | version u16 BE (1) | reserved u16 (0) | chunk size u32 BE
///                        | nonce prefix (8 random bytes, new for every file)
///     chunk i:           AES-256-GCM(plaintext of chunkSize bytes, or fewer in the last) | tag (16)
///
/// Chunk i's nonce is the prefix followed by i (u32 BE); its AAD is the header, i (u64 BE) and a
/// final flag (1 on the last chunk, 0 before). Every file ends with a chunk marked final (an
/// empty one for an empty file), so a changed byte anywhere, a cut at any point
/// (including a chunk boundary), chunks swapped or moved from another file, or bytes after the
/// end all fail authentication. Nonces stay unique under one data key as long as the random
/// prefixes differ (64 bits: a collision is unlikely before billions of files).
public enum EncryptedStream {
    static let magic = Array("JBCRYPT1".utf8)
    static let version: UInt16 = 1
    static let headerSize = 24
    public static let defaultChunkSize = 1 << 20

    static func header(chunkSize: Int, prefix: [UInt8]) -> [UInt8] {
        var h = magic
        h += [UInt8(version >> 8), UInt8(version & 0xff), 0, 0]
        h += withUnsafeBytes(of: UInt32(chunkSize).bigEndian, Array.init)
        return h + prefix
    }

    static func nonce(_ prefix: ArraySlice<UInt8>, _ index: UInt64) -> [UInt8] {
        Array(prefix) + withUnsafeBytes(of: UInt32(truncatingIfNeeded: index).bigEndian, Array.init)
    }

    static func aad(_ header: [UInt8], _ index: UInt64, final: Bool) -> [UInt8] {
        header + withUnsafeBytes(of: index.bigEndian, Array.init) + [final ? 1 : 0]
    }
}

/// Encrypts a stream: `write` plaintext as it comes, `finish` once; ciphertext goes to `sink`
/// (a local file, an `S3Upload`) a chunk at a time.
public final class StreamEncryptor {
    private let gcm: AESGCM
    private let chunkSize: Int
    private let header: [UInt8]
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var buffer: [UInt8] = []
    private var index: UInt64 = 0
    private var started = false

    public init(key: DataKey, chunkSize: Int = EncryptedStream.defaultChunkSize, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        gcm = AESGCM(key: key.bytes)
        self.chunkSize = chunkSize
        header = EncryptedStream.header(chunkSize: chunkSize, prefix: AESGCM.random(8))
        self.sink = sink
        buffer.reserveCapacity(chunkSize)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            // A full chunk goes out only when more follows, so the last chunk is the final one.
            if buffer.count == chunkSize { try emit(final: false) }
            let n = min(rest.count, chunkSize - buffer.count)
            buffer.append(contentsOf: rest.prefix(n))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    public func finish() throws { try emit(final: true) }

    private func emit(final: Bool) throws {
        if !started {
            started = true
            try header.withUnsafeBytes { try sink($0) }
        }
        let sealed = buffer.withUnsafeBytes {
            gcm.seal($0, nonce: EncryptedStream.nonce(header[16...], index), aad: EncryptedStream.aad(header, index, final: final))
        }
        index += 1
        buffer.removeAll(keepingCapacity: true)
        try sealed.withUnsafeBytes { try sink($0) }
    }

    /// Encrypts a whole buffer (manifests, sums).
    public static func seal(_ plain: [UInt8], key: DataKey, chunkSize: Int = EncryptedStream.defaultChunkSize) throws -> [UInt8] {
        var out: [UInt8] = []
        let e = StreamEncryptor(key: key, chunkSize: chunkSize) { out.append(contentsOf: $0) }
        try e.write(plain)
        try e.finish()
        return out
    }
}

/// Decrypts a stream: `push` ciphertext as it arrives, `finish` at its end. Plaintext reaches
/// `sink` only a whole authenticated chunk at a time, but a file is whole only when `finish`
/// returns: a caller keeps what it wrote provisional until then (a cut file fails at `finish`).
public final class StreamDecryptor {
    private let gcm: AESGCM
    private let name: String
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var header: [UInt8] = []
    private var chunkSize = 0
    private var buffer: [UInt8] = []
    private var index: UInt64 = 0

    /// `name` says which file in errors.
    public init(key: DataKey, name: String, sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        gcm = AESGCM(key: key.bytes)
        self.name = name
        self.sink = sink
    }

    public func push(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if header.isEmpty {
            guard buffer.count >= EncryptedStream.headerSize else { return }
            let h = Array(buffer.prefix(EncryptedStream.headerSize))
            guard Array(h.prefix(8)) == EncryptedStream.magic else {
                throw JetError(.databaseCorrupted, "\(name) is not an encrypted file of this format (bad magic)")
            }
            guard h[8] == 0 && h[9] == UInt8(EncryptedStream.version) else {
                throw JetError(.databaseCorrupted, "\(name): encrypted format version \(Int(h[8]) << 8 | Int(h[9])) is not one this build reads")
            }
            chunkSize = Int(h[12]) << 24 | Int(h[13]) << 16 | Int(h[14]) << 8 | Int(h[15])
            guard chunkSize > 0 && chunkSize <= 64 << 20 else {
                throw JetError(.databaseCorrupted, "\(name): encrypted file header names a chunk size of \(chunkSize) bytes")
            }
            header = h
            buffer.removeFirst(EncryptedStream.headerSize)
        }
        let sealed = chunkSize + AESGCM.tagSize
        // Only a chunk with bytes after it is known not to be the last.
        while buffer.count > sealed {
            try open(buffer.prefix(sealed), final: false)
            buffer.removeFirst(sealed)
        }
    }

    public func push(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try push($0) } }

    public func finish() throws {
        guard !header.isEmpty else { throw JetError(.databaseCorrupted, "\(name): encrypted file cut short (no complete header)") }
        try open(buffer[...], final: true)
        buffer = []
    }

    private func open(_ chunk: ArraySlice<UInt8>, final: Bool) throws {
        let plain = chunk.withUnsafeBytes {
            gcm.open($0, nonce: EncryptedStream.nonce(header[16...], index), aad: EncryptedStream.aad(header, index, final: final))
        }
        guard let plain else {
            throw JetError(.databaseCorrupted, "\(name): encrypted chunk \(index) fails authentication: the file was changed, cut "
                           + "or reordered, or the key is not this repository's")
        }
        index += 1
        try plain.withUnsafeBytes { try sink($0) }
    }

    public static func open(_ sealed: [UInt8], key: DataKey, name: String) throws -> [UInt8] {
        var out: [UInt8] = []
        let d = StreamDecryptor(key: key, name: name) { out.append(contentsOf: $0) }
        try d.push(sealed)
        try d.finish()
        return out
    }
}
