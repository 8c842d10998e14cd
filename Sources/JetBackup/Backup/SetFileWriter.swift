import Crypto
import JetStore

/// Writes one file of a backup set sequentially, keeping its CRC32C and SHA-256 as it goes,
/// and fsyncs it at the end. The file is created new (never over an existing one).
struct SetFileWriter {
    let path: String
    let file: any StorageFile
    private(set) var size: Int64 = 0
    private(set) var crc: UInt32 = 0
    private var sha = SHA256()

    init(fs: any FileSystem, path: String) throws {
        self.path = path
        if fs.exists(path) { try fs.remove(path) }
        file = try fs.open(path, .createNew)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        try file.write(at: size, bytes)
        crc = CRC32C.checksum(bytes, extending: crc)
        sha.update(bufferPointer: bytes)
        size += Int64(bytes.count)
    }

    /// fsyncs and closes; returns the SHA-256 in hex.
    mutating func finish() throws -> String {
        try file.sync()
        file.close()
        return sha.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func abandon() { file.close() }
}

enum Hashing {
    static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        SHA256.hash(data: bytes).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
