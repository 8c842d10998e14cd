import Dispatch
import JetStore

/// Writes one file of a backup set sequentially, keeping its CRC32C and SHA-256 as it goes,
/// and fsyncs it at the end. An existing file of that name (a leftover of a killed run that
/// the run's marker listed) is removed first; the file is then created new.
struct SetFileWriter {
    let path: String
    let file: any StorageFile
    private(set) var size: Int64 = 0
    private(set) var crc: UInt32 = 0
    private var writebackStart: Int64 = 0
    private let sha = SHA256Hasher()
    /// When set, the caller hashes (on another thread) and `finish` asks it for the digest.
    var pipelined: PipelinedSHA256?

    /// `direct`: the caller appends whole pages from page-aligned buffers, written straight
    /// to the device where the file system allows (a database image: no copy into the page
    /// cache, and the final fsync has only metadata left).
    init(fs: any FileSystem, path: String, direct: Bool = false) throws {
        self.path = path
        if fs.exists(path) { try fs.remove(path) }
        file = try fs.open(path, direct ? .createNewDirect : .createNew)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer, slot: Int = 0) throws {
        if let p = pipelined { p.update(bytes, slot: slot) } else { sha.update(bytes) }
        try file.write(at: size, bytes)
        crc = CRC32C.checksum(bytes, extending: crc)
        size += Int64(bytes.count)
        // Keep the device busy while we read and hash: the final fsync then waits for little.
        if size - writebackStart >= 8 << 20 {
            file.startWriteback(offset: writebackStart, length: Int(size - writebackStart))
            writebackStart = size
        }
    }

    /// fsyncs and closes; returns the SHA-256 in hex.
    mutating func finish() throws -> String {
        if let p = pipelined {
            let hex = p.finalizeHex()
            try file.sync()
            file.close()
            return hex
        }
        try file.sync()
        file.close()
        return sha.finalizeHex()
    }

    /// Like `finish`, but leaves the fsync to `SetFileWriter.syncAll`, so many small files are
    /// written back together instead of one fsync after each.
    mutating func finishDeferringSync() -> String {
        file.startWriteback(offset: 0, length: Int(size))
        if let p = pipelined { return p.finalizeHex() }
        return sha.finalizeHex()
    }

    /// fsyncs and closes files finished with `finishDeferringSync`.
    static func syncAll(_ files: [any StorageFile]) throws {
        defer { for f in files { f.close() } }
        for f in files { try f.sync() }
    }

    func abandon() {
        _ = pipelined?.finalizeHex() // no buffer may still be in use by the hasher
        file.close()
    }
}

/// SHA-256 on the second core: `update` hands a buffer to a serial queue and returns; the
/// caller must not change that buffer until `wait(slot:)` for it returns. The hash state is
/// touched only on the queue.
final class PipelinedSHA256: @unchecked Sendable {
    private let sha = SHA256Hasher()
    private let queue = DispatchQueue(label: "jetbackup.sha256")
    private let slots: [DispatchSemaphore]

    init(slots n: Int) { slots = (0..<n).map { _ in DispatchSemaphore(value: 1) } }

    /// Waits until the buffer of `slot` is no longer being hashed.
    func wait(slot: Int) {
        slots[slot].wait()
        slots[slot].signal()
    }

    func update(_ bytes: UnsafeRawBufferPointer, slot: Int) {
        slots[slot].wait()
        let b = SendableBuffer(bytes: bytes)
        queue.async { [self] in
            sha.update(b.bytes)
            slots[slot].signal()
        }
    }

    func finalizeHex() -> String {
        queue.sync { sha.finalizeHex() }
    }
}

/// A buffer handed to the hashing queue; the slot semaphore keeps it alive and unchanged.
struct SendableBuffer: @unchecked Sendable { let bytes: UnsafeRawBufferPointer }

enum Hashing {
    static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String { SHA256Hasher.hex(bytes) }
}
