import JetStore

/// What a backup destination needs beyond `FileSystem` when it is object storage rather than a
/// POSIX directory tree (README "Remote storage and encryption"). A set's files go through the
/// same `FileSystem` calls either way; these are the few places where the difference matters:
/// a directory cannot be renamed (atomic backups and expire's one-step removal), a write is
/// one object's upload (written in order, finished by `sync`), and a query that cannot throw
/// (`exists`, `isDirectory`) may have failed for a reason other than absence.
public protocol ObjectStore: Sendable {
    /// Aborts multipart uploads under `path` that a killed run left; returns how many.
    func discardUnfinishedUploads(under path: String) throws -> Int
    /// Throws the first error an `exists`/`isDirectory`/`isWritableDirectory` query met (and
    /// forgets it): a decision taken from such answers (a set without a manifest is removable)
    /// must not rest on a store that did not answer.
    func throwIfQueryFailed() throws
}

extension FileSystem {
    /// The object store this file system writes to (through an encryption layer), nil for a local one.
    public var objectStore: (any ObjectStore)? {
        if let s = self as? any ObjectStore { return s }
        if let e = self as? EncryptedFileSystem { return e.base.objectStore }
        return nil
    }
}

/// Writes that may arrive out of order (the image pipeline keeps several in flight) handed
/// to a sink that takes bytes strictly in order (an upload, an encryptor): a write ahead of
/// the next offset is held (copied) until the bytes before it arrive. The pipeline bounds
/// what is held (its writes in flight). Not thread-safe: the owner serialises calls.
struct InOrderWrites {
    private(set) var next: Int64 = 0
    private var held: [Int64: [UInt8]] = [:]

    var isComplete: Bool { held.isEmpty }

    mutating func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer, path: String,
                        sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        if bytes.isEmpty { return }
        guard offset >= next, held[offset] == nil else {
            throw JetError(.invalidParameter, "\(path) is written once, front to back: a write at offset \(offset) comes after "
                           + "offset \(next) was already written")
        }
        guard offset == next else {
            held[offset] = Array(bytes)
            return
        }
        try sink(bytes)
        next += Int64(bytes.count)
        while let b = held.removeValue(forKey: next) {
            try b.withUnsafeBytes { try sink($0) }
            next += Int64(b.count)
        }
    }
}
