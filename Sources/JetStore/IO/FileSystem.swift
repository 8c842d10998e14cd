/// The one seam all engine and backup I/O goes through (leveldb's `Env`).
/// `PosixFileSystem` is the real one; `MemoryFileSystem` keeps files in memory and can
/// crash after the N-th write or fsync, dropping or tearing what was not synced.
public protocol StorageFile: AnyObject, Sendable {
    var path: String { get }
    /// Reads up to `buffer.count` bytes at `offset`; fewer only at end of file.
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Writes all of `bytes` at `offset`, extending the file as needed.
    func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws
    /// Writes `parts` one after the other from `offset`, as one write (pwritev).
    func write(at offset: Int64, gathering parts: [UnsafeRawBufferPointer]) throws
    /// Makes everything written so far durable. For a file that can be made durable only
    /// once, at its end (an upload, an encrypted stream), this also ends it.
    func sync() throws
    /// Makes what was written so far durable while the file stays open for more writes (a
    /// large file made durable in steps). Does nothing where a file can be made durable only
    /// at its end: `sync` then does it all.
    func syncWritten() throws
    func size() throws -> Int64
    func truncate(to size: Int64) throws
    /// Extends the file, whose end is `end`, by `count` zero bytes: a hole where the file
    /// system keeps them (no blocks written or allocated, as `cp --sparse` leaves), the zeros
    /// written otherwise (the default: an encrypted or uploaded file).
    func appendZeros(at end: Int64, count: Int) throws
    func close()
    func startWriteback(offset: Int64, length: Int)
    /// Starts writing every dirty page of the file back without waiting and without
    /// dropping anything from the cache (unlike `startWriteback`): a hint that moves the
    /// work of a later `sync` to whoever calls this. Nothing about durability changes.
    func flushBehind()
    func willNeed(offset: Int64, length: Int)
}

extension StorageFile {
    /// One write of the parts joined (a file system without gathered writes).
    public func write(at offset: Int64, gathering parts: [UnsafeRawBufferPointer]) throws {
        let total = parts.reduce(0) { $0 + $1.count }
        let joined = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 4096)
        defer { joined.deallocate() }
        var o = 0
        for p in parts where p.count > 0 {
            (joined.baseAddress! + o).copyMemory(from: p.baseAddress!, byteCount: p.count)
            o += p.count
        }
        try write(at: offset, UnsafeRawBufferPointer(joined))
    }

    /// Starts writing `length` bytes at `offset` back to the device without waiting, so a
    /// later `sync` has less left to do. A hint: no effect where unsupported.
    public func startWriteback(offset: Int64, length: Int) {}

    public func flushBehind() {}

    public func syncWritten() throws {}

    public func appendZeros(at end: Int64, count: Int) throws {
        let chunk = min(count, 1 << 20)
        guard chunk > 0 else { return }
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: FileBytes.pageAlignment)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            try write(at: end + Int64(done), UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
            done += n
        }
    }

    /// Starts reading `length` bytes at `offset` into the page cache without waiting, so a
    /// later read finds them there. A hint: no effect where unsupported.
    public func willNeed(offset: Int64, length: Int) {}

}

public enum OpenMode: Sendable {
    case readOnly
    case readWrite
    /// Fails if the file exists.
    case createNew
    /// Creates or empties the file.
    case createOrTruncate
    /// Like `readWrite`, but writes go straight to the device where the file system allows
    /// (O_DIRECT), from page-aligned buffers in whole pages: for the doublewrite file, written
    /// once and read only after a crash, which should not crowd the databases out of the page cache.
    case readWriteDirect
    /// Like `createNew`, but writes go straight to the device where the file system allows
    /// (O_DIRECT): for large sequential copies of whole pages from page-aligned buffers, which
    /// should neither pass through nor crowd out the page cache. Elsewhere it is `createNew`.
    case createNewDirect
}

public protocol FileLock: AnyObject, Sendable {
    func release()
}

public protocol FileSystem: Sendable {
    func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile
    func exists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Bool
    /// True if `path` is a symbolic link (never followed).
    func isSymlink(_ path: String) -> Bool
    /// Names (not paths) of the entries of a directory, sorted.
    func list(_ directory: String) throws -> [String]
    func remove(_ path: String) throws
    func removeDirectory(_ path: String) throws
    /// Atomic replace of `to` by `from` (POSIX rename).
    func rename(_ from: String, _ to: String) throws
    /// Creates a directory readable by its owner only (0700).
    func createDirectory(_ path: String) throws
    /// Makes the directory's entries (creates, renames, removes) durable.
    func syncDirectory(_ path: String) throws
    /// Exclusive owner lock; fails at once with `fileAccessDenied` naming the holder.
    /// The lock file may be removed while held (before `release`): a later `lock` of the
    /// path then locks a new file, never the removed one.
    func lock(_ path: String, owner: String) throws -> any FileLock
    /// `path` absolute, with symbolic links resolved and no `.` or `..`; for a path that does
    /// not exist (yet), its longest existing prefix resolved and the rest appended.
    func canonicalPath(_ path: String) -> String
    /// True if `path` is a directory (a link to one counts) this process may create and
    /// remove entries in (access(2) W_OK|X_OK: false on a read-only file system or without
    /// write permission).
    func isWritableDirectory(_ path: String) -> Bool
    /// A whole file's bytes, mapped where the file system allows (see `FileBytes`: only for
    /// a file nothing truncates while they are held).
    func readWhole(_ path: String) throws -> FileBytes
}

extension FileSystem {
    public func readWhole(_ path: String) throws -> FileBytes { FileBytes(try readAll(path)) }

    /// Reads a whole small file (manifests, parameters).
    public func readAll(_ path: String) throws -> [UInt8] {
        let f = try open(path, .readOnly)
        defer { f.close() }
        let n = Int(try f.size())
        // Read straight into the array's storage: no zero fill first (a log generation is
        // read whole for every backup and restore).
        return try [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            count = 0
            guard n > 0 else { return }
            count = try f.read(at: 0, into: UnsafeMutableRawBufferPointer(buffer))
        }
    }

    /// Writes a small file durably and atomically: temp file, fsync, rename, fsync directory
    /// (leveldb `SetCurrentFile`). After it returns, `path` holds `bytes` or, after a crash
    /// before the rename, its old content.
    public func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        if exists(tmp) { try remove(tmp) }
        let f = try open(tmp, .createNew)
        do {
            try bytes.withUnsafeBytes { try f.write(at: 0, $0) }
            try f.sync()
            f.close()
        } catch {
            f.close()
            try? remove(tmp)
            throw error
        }
        try rename(tmp, path)
        try syncDirectory(FilePaths.directory(of: path))
    }

    /// Removes a directory and everything below it (it never follows links).
    public func removeTree(_ path: String) throws {
        if isSymlink(path) || !isDirectory(path) {
            if exists(path) || isSymlink(path) { try remove(path) }
            return
        }
        for name in try list(path) {
            try removeTree(FilePaths.join(path, name))
        }
        try removeDirectory(path)
    }
}
