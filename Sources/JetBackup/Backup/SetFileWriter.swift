import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
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
    /// When set, chunks are hashed and written by the pipeline (`append(_:slot:)`).
    var pipeline: ChunkPipeline?
    /// Appends of at least this many bytes are hashed while they are written.
    static let hashAlongside = 256 << 10

    /// `direct`: the caller appends whole pages from page-aligned buffers, written straight
    /// to the device where the file system allows (a database image: no copy into the page
    /// cache, and the final fsync has only metadata left).
    init(fs: any FileSystem, path: String, direct: Bool = false) throws {
        self.path = path
        if fs.exists(path) { try fs.remove(path) }
        file = try fs.open(path, direct ? .createNewDirect : .createNew)
    }

    /// Appends `bytes`. With `zerosFrom`, the bytes from there on are all zero (the caller
    /// checked) and are not written: the file is extended past what was written instead
    /// (`StorageFile.appendZeros`: a hole where the file system keeps them), so it reads back
    /// the same and has the same checksums.
    mutating func append(_ bytes: UnsafeRawBufferPointer, slot: Int = 0, zerosFrom: Int? = nil) throws {
        let written = UnsafeRawBufferPointer(rebasing: bytes[0..<(zerosFrom ?? bytes.count)])
        if let p = pipeline {
            precondition(zerosFrom == nil, "a pipelined file is written in whole chunks")
            p.submit(bytes, at: size, slot: slot)
        } else if bytes.count >= Self.hashAlongside {
            // The SHA-256 (about 0.5 ms a MiB) on another thread while this one waits for the
            // write: the device starts on the bytes at once instead of after the hash.
            let job = HashJob(sha: sha, bytes: bytes)
            let hashed = DispatchGroup()
            DispatchQueue.global().async(group: hashed) { job.sha.update(job.bytes) }
            defer { hashed.wait() } // the bytes stay the caller's until the hash is done
            try write(written, zeros: bytes.count - written.count)
        } else {
            sha.update(bytes)
            try write(written, zeros: bytes.count - written.count)
        }
        crc = CRC32C.checksum(bytes, extending: crc)
        size += Int64(bytes.count)
        // Keep the device busy while we read and hash: the final fsync then waits for little.
        // (A pipeline keeps it busy by itself.)
        if pipeline == nil, size - writebackStart >= 8 << 20 {
            file.startWriteback(offset: writebackStart, length: Int(size - writebackStart))
            writebackStart = size
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, zeros: Int) throws {
        if bytes.count > 0 { try file.write(at: size, bytes) }
        if zeros > 0 { try file.appendZeros(at: size + Int64(bytes.count), count: zeros) }
    }

    /// fsyncs and closes; returns the SHA-256 in hex.
    mutating func finish() throws -> String {
        if let p = pipeline {
            let hex = try p.finish()
            try file.sync()
            file.close()
            return hex
        }
        try file.sync()
        file.close()
        return sha.finalizeHex()
    }

    /// Like `finish`, but leaves the fsync and the close to the caller (`SyncBehind`, or a
    /// restore's fsync of all its logs after replay), so many small files are written back
    /// together instead of one fsync after each.
    mutating func finishDeferringSync() -> String {
        file.startWriteback(offset: 0, length: Int(size))
        return sha.finalizeHex()
    }

    func abandon() {
        pipeline?.drain() // no buffer may still be in use by the pipeline
        file.close()
    }
}

/// The write-behind pipeline of a large file (a database image): each chunk, already
/// verified by the caller in its own buffer, is hashed on one serial queue (SHA-256 is
/// sequential) and written at its offset by one of up to `writers` concurrent writes, so
/// several writes are in flight while the caller reads and verifies the next chunks. With
/// `flushEvery`, a `Flusher` makes the file durable in steps while it is written. The caller
/// must not touch a chunk's buffer until `wait(slot:)` for it returns; the first write (or
/// step fsync) error is kept and thrown from there.
final class ChunkPipeline: @unchecked Sendable {
    private let sha = SHA256Hasher()
    private let hashQueue = DispatchQueue(label: "jetbackup.sha256")
    private let writeQueue = DispatchQueue(label: "jetbackup.write", attributes: .concurrent)
    private let inFlight: DispatchSemaphore
    private let slots: [DispatchGroup]
    private let file: any StorageFile
    private let errorLock = Lock()
    private var firstError: Error?

    private let flusher: Flusher?

    init(file: any StorageFile, slots n: Int, writers: Int, flushEvery: Int? = nil) {
        self.file = file
        slots = (0..<n).map { _ in DispatchGroup() }
        inFlight = DispatchSemaphore(value: writers)
        flusher = flushEvery.map { Flusher(file: file, every: Int64($0)) }
    }

    /// Waits until the buffer of `slot` is hashed and written; throws the first write error.
    func wait(slot: Int) throws {
        slots[slot].wait()
        if let e = errorLock.withLock({ firstError }) ?? flusher?.failure { throw e }
    }

    /// Hands a chunk over: it is hashed in order and written at `offset`.
    func submit(_ bytes: UnsafeRawBufferPointer, at offset: Int64, slot: Int) {
        slots[slot].wait()
        let b = SendableBuffer(bytes: bytes)
        let group = slots[slot]
        group.enter()
        hashQueue.async { [self] in
            sha.update(b.bytes)
            group.leave()
        }
        group.enter()
        inFlight.wait()
        writeQueue.async { [self] in
            defer { inFlight.signal(); group.leave() }
            if errorLock.withLock({ firstError }) != nil { return }
            do {
                try file.write(at: offset, b.bytes)
                flusher?.wrote(b.bytes.count)
            } catch {
                errorLock.withLock { if firstError == nil { firstError = error } }
            }
        }
    }

    /// Waits for every chunk; returns the SHA-256 in hex or throws the first write error.
    func finish() throws -> String {
        drain()
        if let e = errorLock.withLock({ firstError }) { throw e }
        return hashQueue.sync { sha.finalizeHex() }
    }

    /// Waits for every chunk handed over, whatever happened to it (before buffers are freed),
    /// and for the flusher; a flush that failed is thrown by `finish` (as a write error).
    func drain() {
        for g in slots { g.wait() }
        if let e = flusher?.stop() {
            errorLock.withLock { if firstError == nil { firstError = e } }
        }
    }
}

/// A hash handed to another thread with its bytes; the caller waits for it before it uses
/// the hasher again or lets the bytes go.
private struct HashJob: @unchecked Sendable {
    let sha: SHA256Hasher
    let bytes: UnsafeRawBufferPointer
}

/// A buffer handed to the hashing queue; the slot semaphore keeps it alive and unchanged.
struct SendableBuffer: @unchecked Sendable { let bytes: UnsafeRawBufferPointer }

/// A buffer that one worker at a time writes into (its slot's owner).
struct SendableMutableBuffer: @unchecked Sendable { let bytes: UnsafeMutableRawBufferPointer }
