#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A `FileSystem` over one bucket of an S3 store, so backup, verify, restore and the
/// repository commands read and write `s3://BUCKET/PREFIX/...` with the same code as a local
/// directory (README "Remote storage and encryption"). Paths are `s3://BUCKET/KEY`; a file is
/// an object; a directory is a key prefix — every prefix that is not an object's key is a
/// directory, existing (`exists`) once something is stored under it, so creating one does
/// nothing and removing one only checks it is empty. Nothing is a symbolic link.
///
/// A file opened for writing is one streaming upload (`S3Upload`): written front to back
/// (writes ahead of the next offset are held until it is reached), the object created by
/// `sync`, the upload aborted if the file is closed before. Renaming a file copies and
/// deletes it (the small files `writeAtomically` renames); a directory cannot be renamed.
/// A lock is an object created with `putIfAbsent` (`S3Lock`).
///
/// A directory's listing (one request a thousand entries) is kept and answers `exists`,
/// `isDirectory` and the size of `open` for the names in it, until anything is written or
/// removed there through this file system: reading a set of a thousand files then costs a
/// listing and the reads, not a thousand lookups more.
public final class S3FileSystem: FileSystem, ObjectStore, @unchecked Sendable {
    public let client: S3Client
    /// `s3://BUCKET`, the prefix of every path.
    public let root: String
    private let lock = Lock()
    private var queryFailure: JetError?
    private struct Listing { var objects: [String: Int64]; var directories: Set<String> }
    /// By directory key ("" for the bucket).
    private var listings: [String: Listing] = [:]

    public init(client: S3Client) {
        self.client = client
        root = "s3://\(client.bucket)"
    }

    /// The file system of `location`'s bucket and the path of its prefix, after one request
    /// that proves the bucket is there and the credentials are accepted (so a refusal is
    /// reported as itself, 77 or 73, and not as a missing repository).
    public static func connect(_ location: S3Location, config: S3Config) throws -> (fs: S3FileSystem, path: String) {
        let fs = S3FileSystem(client: S3Client(config: config, bucket: location.bucket))
        _ = try fs.client.hasObjects(prefix: location.prefix.isEmpty ? "" : location.prefix + "/")
        return (fs, location.description)
    }

    /// The object key of `path`; "" for the bucket itself.
    func key(_ path: String) throws -> String {
        guard path == root || path.hasPrefix(root + "/") else {
            throw JetError(.invalidPath, "\(path) is not in \(root)")
        }
        return path.dropFirst(root.count).split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// The directory key and the name of `k`.
    static func split(_ k: String) -> (dir: String, name: String) {
        guard let i = k.lastIndex(of: "/") else { return ("", k) }
        return (String(k[..<i]), String(k[k.index(after: i)...]))
    }

    /// What the kept listing of `k`'s directory says of it: an object of that size, or nil
    /// (none there; or a directory, `isObject` false); no answer when no listing is kept.
    private func cached(_ k: String) -> (isObject: Bool, size: Int64?, isDirectory: Bool)? {
        let (d, n) = Self.split(k)
        return lock.withLock {
            guard let l = listings[d] else { return nil }
            let size = l.objects[n]
            return (size != nil, size, l.directories.contains(n))
        }
    }

    /// Forgets the listings that a change of `k` makes stale: its directory's and every
    /// ancestor's (a new key may make a new sub-prefix there).
    func changed(_ k: String) {
        lock.withLock {
            var d = k
            while true {
                d = Self.split(d).dir
                listings[d] = nil
                if d.isEmpty { break }
            }
        }
    }

    private func query<T>(_ fallback: T, _ body: () throws -> T) -> T {
        do { return try body() } catch {
            let e = error as? JetError ?? JetError(.diskIO, "\(error)")
            lock.withLock { if queryFailure == nil { queryFailure = e } }
            return fallback
        }
    }

    public func throwIfQueryFailed() throws {
        if let e = lock.withLock({ () -> JetError? in defer { queryFailure = nil }; return queryFailure }) { throw e }
    }

    public func discardUnfinishedUploads(under path: String) throws -> Int {
        let k = try key(path)
        return try client.abortIncompleteUploads(prefix: k.isEmpty ? "" : k + "/")
    }

    // MARK: FileSystem

    public func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
        let k = try key(path)
        guard !k.isEmpty else { throw JetError(.invalidPath, "\(path) is a bucket, not a file") }
        switch mode {
        case .readOnly:
            if let c = cached(k), let size = c.size { return S3ReadFile(client: client, key: k, path: path, size: size) }
            guard let o = try client.head(k) else { throw JetError(.fileNotFound, "\(path) does not exist") }
            return S3ReadFile(client: client, key: k, path: path, size: o.size)
        case .createNew, .createNewDirect, .createOrTruncate:
            changed(k)
            return S3WriteFile(upload: client.upload(k), path: path) { [weak self] in self?.changed(k) }
        case .readWrite, .readWriteDirect:
            changed(k)
            let existing = try client.head(k) == nil ? [] : try client.get(k)
            return S3RewriteFile(client: client, key: k, path: path, bytes: existing) { [weak self] in self?.changed(k) }
        }
    }

    public func exists(_ path: String) -> Bool {
        query(false) {
            let k = try key(path)
            if k.isEmpty { return true }
            if let c = cached(k), !c.isDirectory { return c.isObject }
            return try client.head(k) != nil || client.hasObjects(prefix: k + "/")
        }
    }

    public func isDirectory(_ path: String) -> Bool {
        query(false) {
            let k = try key(path)
            if k.isEmpty { return true }
            if let c = cached(k) { return !c.isObject }
            return try client.head(k) == nil
        }
    }

    public func isSymlink(_ path: String) -> Bool { false }

    public func list(_ directory: String) throws -> [String] {
        let k = try key(directory)
        let prefix = k.isEmpty ? "" : k + "/"
        let level = try client.listLevel(prefix: prefix)
        var listing = Listing(objects: [:], directories: [])
        for o in level.objects where o.key.count > prefix.count { listing.objects[String(o.key.dropFirst(prefix.count))] = o.size }
        // Some stores (SeaweedFS) keep a folder whose objects were all deleted and list it as a
        // common prefix: only a prefix with objects under it is an entry.
        for p in level.prefixes where try client.hasObjects(prefix: p) {
            listing.directories.insert(String(p.dropFirst(prefix.count).dropLast()))
        }
        lock.withLock { listings[k] = listing }
        return Set(listing.objects.keys).union(listing.directories).sorted()
    }

    public func remove(_ path: String) throws {
        let k = try key(path)
        changed(k)
        try client.delete(k)
    }

    public func removeDirectory(_ path: String) throws {
        let k = try key(path)
        if try client.hasObjects(prefix: k.isEmpty ? "" : k + "/") {
            throw JetError(.invalidPath, "\(path) is not empty; it cannot be removed as a directory")
        }
        // The folder object some stores keep for an emptied prefix (a no-op on S3 itself).
        if !k.isEmpty {
            changed(k)
            try? client.delete(k + "/")
        }
    }

    public func rename(_ from: String, _ to: String) throws {
        let (f, t) = (try key(from), try key(to))
        changed(f)
        changed(t)
        defer { changed(f); changed(t) }
        guard try client.head(f) != nil else {
            if try client.hasObjects(prefix: f + "/") {
                throw JetError(.invalidParameter, "\(from) cannot be renamed to \(to): object storage has no rename of a directory")
            }
            throw JetError(.fileNotFound, "\(from) does not exist")
        }
        try client.put(t, try client.get(f))
        try client.delete(f)
    }

    public func createDirectory(_ path: String) throws {}
    public func syncDirectory(_ path: String) throws {}

    public func lock(_ path: String, owner: String) throws -> any FileLock {
        let k = try key(path)
        changed(k)
        defer { changed(k) }
        return try S3Lock.acquire(client: client, key: k, path: path, owner: owner) { [weak self] in self?.changed(k) }
    }

    public func canonicalPath(_ path: String) -> String { path }

    public func isWritableDirectory(_ path: String) -> Bool { isDirectory(path) }
}

/// An object read by ranges, a window at a time, so a reader of small pieces makes one request
/// per window: the window starts small (a reader of two header pages fetches little) and doubles
/// up to 8 MiB while the reads go on front to back.
final class S3ReadFile: ReadOnlyStorageFile, @unchecked Sendable {
    static let firstWindow = 256 << 10
    static let window = 8 << 20
    private var nextWindow = S3ReadFile.firstWindow
    let client: S3Client
    let key: String
    let path: String
    let length: Int64
    private let lock = Lock()
    private var cached: [UInt8] = []
    private var cachedAt: Int64 = 0

    init(client: S3Client, key: String, path: String, size: Int64) {
        self.client = client
        self.key = key
        self.path = path
        length = size
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try lock.withLock {
            var done = 0
            while done < buffer.count {
                let at = offset + Int64(done)
                if at >= length { break }
                if at < cachedAt || at >= cachedAt + Int64(cached.count) {
                    nextWindow = at == cachedAt + Int64(cached.count) ? min(Self.window, nextWindow * 2) : Self.firstWindow
                    let end = min(length, at + Int64(max(nextWindow, buffer.count - done)))
                    cached = try client.get(key, range: at..<end)
                    cachedAt = at
                    guard cached.count == Int(end - at) else {
                        throw JetError(.readVerifyFailure, "\(path) changed while it was read (got \(cached.count) bytes of \(end - at))")
                    }
                }
                let from = Int(at - cachedAt)
                let n = min(buffer.count - done, cached.count - from)
                cached.withUnsafeBytes { src in
                    (buffer.baseAddress! + done).copyMemory(from: src.baseAddress! + from, byteCount: n)
                }
                done += n
            }
            return done
        }
    }

    func size() throws -> Int64 { length }
    func close() { lock.withLock { cached = [] } }
}

/// A new object written front to back as one streaming upload; `sync` completes it.
final class S3WriteFile: StorageFile, @unchecked Sendable {
    let path: String
    private let upload: S3Upload
    private let lock = Lock()
    private var order = InOrderWrites()
    private var finished = false
    /// Called once the object exists (the file system's kept listings are stale then).
    private let created: @Sendable () -> Void

    init(upload: S3Upload, path: String, created: @escaping @Sendable () -> Void) {
        self.upload = upload
        self.path = path
        self.created = created
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        throw JetError(.invalidParameter, "\(path) is being uploaded and cannot be read yet")
    }

    func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws {
        try lock.withLock {
            guard !finished else { throw JetError(.invalidParameter, "\(path) was already completed") }
            let upload = self.upload
            try order.write(at: offset, bytes, path: path) { try upload.write($0) }
        }
    }

    /// Completes the object: after this it exists with every byte written.
    func sync() throws {
        try lock.withLock {
            if finished { return }
            guard order.isComplete else {
                throw JetError(.invalidParameter, "\(path) has a gap before offset \(order.next); the upload was not completed")
            }
            defer { created() }
            try upload.finish()
            finished = true
        }
    }

    func size() throws -> Int64 { lock.withLock { order.next } }

    func truncate(to size: Int64) throws {
        guard size == (try self.size()) else { throw JetError(.invalidParameter, "\(path) is uploaded front to back and cannot be truncated") }
    }

    /// Closed before `sync`: the upload is aborted and no object is created.
    func close() {
        lock.withLock {
            if !finished { try? upload.abort(); finished = true }
        }
    }
}

/// A small object changed in place (the repository's event log, appended to): read whole,
/// changed in memory, written back whole by `sync`.
final class S3RewriteFile: StorageFile, @unchecked Sendable {
    let client: S3Client
    let key: String
    let path: String
    private let lock = Lock()
    private var bytes: [UInt8]
    private let written: @Sendable () -> Void

    init(client: S3Client, key: String, path: String, bytes: [UInt8], written: @escaping @Sendable () -> Void) {
        self.client = client
        self.key = key
        self.path = path
        self.bytes = bytes
        self.written = written
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        lock.withLock {
            guard offset < Int64(bytes.count) else { return 0 }
            let n = min(buffer.count, bytes.count - Int(offset))
            bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n) }
            return n
        }
    }

    func write(at offset: Int64, _ b: UnsafeRawBufferPointer) throws {
        lock.withLock {
            let end = Int(offset) + b.count
            if bytes.count < end { bytes += [UInt8](repeating: 0, count: end - bytes.count) }
            bytes.replaceSubrange(Int(offset)..<end, with: b)
        }
    }

    func sync() throws {
        defer { written() }
        try client.put(key, lock.withLock { bytes })
    }
    func size() throws -> Int64 { lock.withLock { Int64(bytes.count) } }
    func truncate(to size: Int64) throws {
        lock.withLock {
            if Int(size) < bytes.count { bytes.removeLast(bytes.count - Int(size)) } else {
                bytes += [UInt8](repeating: 0, count: Int(size) - bytes.count)
            }
        }
    }
    func close() {}
}
