#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file system in memory with fault injection (leveldb `helpers/memenv` plus
/// `fault_injection_test`). Every file keeps what was synced apart from what was only
/// written, so a simulated crash can drop unsynced writes, keep a prefix of them, or tear
/// the last one mid-way. Directory operations (create, rename, remove) count as durable at
/// once: the engine fsyncs the directory after each, so this loses nothing it relies on.
public final class MemoryFileSystem: FileSystem, @unchecked Sendable {
    public enum CrashMode: Sendable {
        /// Every write since the last fsync of its file is lost.
        case dropUnsynced
        /// Unsynced writes reach the disk in order up to a point; the last one is torn.
        case tornPrefix(seed: UInt64)
        /// The unsynced writes `keep(path, offset)` selects reached the disk whole, the others
        /// not at all: a disk that reorders writes between two flushes.
        case selective(@Sendable (String, Int) -> Bool)
    }

    final class Node {
        var data: [UInt8] = []
        var synced: [UInt8] = []
        /// Writes since the last sync, oldest first.
        var pending: [(offset: Int, bytes: [UInt8])] = []
    }

    private let lock = Lock()
    private var files: [String: Node] = [:]
    private var directories: Set<String> = ["/"]
    /// Held locks: path → the holder's file. Removing the file frees the path (a later
    /// `lock` locks a new file), as flock on a removed file does.
    private var locks: [String: Node] = [:]
    /// Directories whose entries cannot be created or removed (a read-only mount, no write
    /// permission): such operations fail as EACCES does on a real disk.
    private var readOnly: Set<String> = []
    /// Writes and fsyncs performed; the crash point counts these.
    public private(set) var ioCount = 0
    /// With `traceIO` on, each counted operation as (its number, path, kind): tests find
    /// the crash points of one file this way.
    public var traceIO: Bool {
        get { lock.withLock { tracing } }
        set { lock.withLock { tracing = newValue } }
    }
    public var ioTrace: [(index: Int, path: String, kind: IOKind)] { lock.withLock { trace } }
    private var tracing = false
    private var trace: [(index: Int, path: String, kind: IOKind)] = []
    /// fsyncs of files (group commit tests count these).
    public var syncCount: Int { lock.withLock { syncs } }
    fileprivate var syncs = 0
    /// `flushBehind` calls by path (the engine's write-back started on another thread).
    public func flushBehindCount(_ path: String) -> Int { lock.withLock { flushBehinds[path, default: 0] } }
    private var flushBehinds: [String: Int] = [:]
    fileprivate func countFlushBehind(_ path: String) { lock.withLock { flushBehinds[path, default: 0] += 1 } }
    /// How long each file fsync takes (a real disk's flush latency), so tests can show
    /// committers sharing one; zero by default.
    public var syncLatency: Duration {
        get { lock.withLock { latency } }
        set { lock.withLock { latency = newValue } }
    }
    private var latency: Duration = .zero
    private var crashAt: Int?
    private var failure: JetError?
    private var failAt: Int?
    private var failSticky = false
    private var failKinds: Set<IOKind> = Set(IOKind.allCases)

    /// What an I/O operation does, for faults that hit only some kinds.
    public enum IOKind: CaseIterable, Sendable { case write, sync, rename, remove, create }
    public private(set) var crashed = false
    /// Called after each read with the file, offset and bytes read: tests change them to
    /// model a page caught in the middle of a write.
    public var readHook: (@Sendable (String, Int64, UnsafeMutableRawBufferPointer) -> Void)? {
        get { lock.withLock { _readHook } }
        set { lock.withLock { _readHook = newValue } }
    }
    private var _readHook: (@Sendable (String, Int64, UnsafeMutableRawBufferPointer) -> Void)?
    /// Reads of the files this is true for fail with an I/O error (a disk that cannot read
    /// one file, as libfiu's posix/io/rw/pread makes it); not counted as I/O points.
    public var failReads: (@Sendable (String) -> Bool)? {
        get { lock.withLock { _failReads } }
        set { lock.withLock { _failReads = newValue } }
    }
    private var _failReads: (@Sendable (String) -> Bool)?

    public init() {}

    /// A copy of the whole file system as it is now (synced state only, no locks).
    public func clone() -> MemoryFileSystem {
        let c = MemoryFileSystem()
        lock.withLock {
            for (p, n) in files {
                let m = Node()
                m.data = n.data; m.synced = n.synced; m.pending = n.pending
                c.files[p] = m
            }
            c.directories = directories
            c.readOnly = readOnly
        }
        return c
    }

    /// After `n` more writes or fsyncs, every operation fails as if the machine stopped.
    public func crash(afterOperations n: Int) { lock.withLock { crashAt = ioCount + n } }

    /// The `n`-th next write or fsync fails once with `error` (disk full, I/O error).
    public func fail(afterOperations n: Int, with error: JetError) {
        lock.withLock { resetFailureLocked(); failAt = ioCount + n; failure = error }
    }

    /// From the `n`-th next write, fsync or rename on, every one fails with `error` (a disk
    /// that keeps failing: undo steps fail too) until `clearFailure()`.
    /// With `only`, just operations of those kinds fail (renames alone, say, as libfiu can
    /// make them), so some undo steps succeed and others do not.
    public func failPersistently(afterOperations n: Int, with error: JetError, only: Set<IOKind> = Set(IOKind.allCases)) {
        lock.withLock { failAt = ioCount + n; failure = error; failSticky = true; failKinds = only }
    }

    public func clearFailure() { lock.withLock { resetFailureLocked() } }

    /// No failure asked for. Called with the lock held.
    private func resetFailureLocked() {
        failAt = nil
        failure = nil
        failSticky = false
        failKinds = Set(IOKind.allCases)
    }

    /// Brings the "machine" back: files hold what a real disk could hold after the crash.
    public func reboot(_ mode: CrashMode) {
        lock.withLock {
            var rng = SplitMix64(seed: { if case .tornPrefix(let s) = mode { return s }; return 0 }())
            for (path, node) in files {
                var image = node.synced
                if case .selective(let keep) = mode {
                    for w in node.pending where keep(path, w.offset) { MemoryFileSystem.apply(&image, w.offset, w.bytes) }
                }
                if case .tornPrefix = mode, !node.pending.isEmpty {
                    let keep = Int(rng.next() % UInt64(node.pending.count + 1))
                    for (i, w) in node.pending.prefix(keep).enumerated() {
                        var bytes = w.bytes
                        if i == keep - 1 {
                            // Torn at a sector boundary: a disk writes 512-byte sectors whole or not at all.
                            let cut = Int(rng.next() % UInt64(bytes.count + 1))
                            let end = (w.offset + cut) / 512 * 512
                            bytes = Array(bytes.prefix(max(0, end - w.offset)))
                        }
                        MemoryFileSystem.apply(&image, w.offset, bytes)
                    }
                }
                node.data = image
                node.synced = image
                node.pending = []
            }
            locks.removeAll()
            crashed = false
            crashAt = nil
            resetFailureLocked()
        }
    }

    static func apply(_ image: inout [UInt8], _ offset: Int, _ bytes: [UInt8]) {
        if image.count < offset + bytes.count {
            image.append(contentsOf: repeatElement(0, count: offset + bytes.count - image.count))
        }
        image.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    /// Counts one write or fsync; throws when a crash or a failure was asked for.
    fileprivate func tick(_ path: String, _ kind: IOKind) throws {
        try lock.withLock {
            if crashed { throw JetError(.diskIO, "simulated crash: \(path) is gone with the machine") }
            ioCount += 1
            if tracing { trace.append((ioCount, path, kind)) }
            if let c = crashAt, ioCount >= c {
                crashed = true
                throw JetError(.diskIO, "simulated crash at I/O \(ioCount) (\(path))")
            }
            if let f = failAt, ioCount >= f, let e = failure, failKinds.contains(kind) {
                if !failSticky { failAt = nil }
                throw JetError(e.code, "injected: \(e.message) (\(path))")
            }
        }
    }

    fileprivate func countSync() {
        let wait = lock.withLock { syncs += 1; return latency }
        if wait > .zero { usleep(UInt32(wait.components.seconds * 1_000_000 + wait.components.attoseconds / 1_000_000_000_000)) }
    }

    fileprivate func checkAlive(_ path: String) throws {
        try lock.withLock {
            if crashed { throw JetError(.diskIO, "simulated crash: \(path) is gone with the machine") }
        }
    }

    /// Makes a directory read-only (entries cannot be created, removed or renamed in it), or
    /// writable again.
    public func setReadOnly(_ directory: String, _ on: Bool = true) {
        lock.withLock { if on { readOnly.insert(directory) } else { readOnly.remove(directory) } }
    }

    /// Throws EACCES's error if `path`'s directory is read-only. Called with the lock held.
    private func checkWritableLocked(_ path: String, _ operation: String) throws {
        if readOnly.contains(FilePaths.directory(of: path)) {
            throw JetError(.diskIO, "I/O error while trying to \(operation) \(path): Permission denied")
        }
    }

    fileprivate func node(_ path: String) -> Node? { lock.withLock { files[path] } }

    fileprivate func withNode<T>(_ n: Node, _ body: (Node) throws -> T) rethrows -> T {
        try lock.withLock { try body(n) }
    }

    /// Raw bytes of a file as written (tests flip bytes through this).
    public func contents(_ path: String) -> [UInt8]? { lock.withLock { files[path]?.data } }

    /// Replaces a file's bytes, as durable (tests use it to damage files).
    public func setContents(_ path: String, _ bytes: [UInt8]) {
        lock.withLock {
            let n = files[path] ?? Node()
            n.data = bytes; n.synced = bytes; n.pending = []
            files[path] = n
        }
    }

    public func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
        try checkAlive(path)
        return try lock.withLock {
            let parent = FilePaths.directory(of: path)
            guard directories.contains(parent) else {
                throw JetError(.fileNotFound, "\(parent) does not exist (open \(path))")
            }
            switch mode {
            case .readOnly, .readWrite, .readWriteDirect:
                guard let n = files[path] else { throw JetError(.fileNotFound, "\(path) does not exist (open)") }
                return MemoryFile(fs: self, path: path, node: n, writable: mode != .readOnly)
            case .createNew, .createNewDirect:
                try checkWritableLocked(path, "create")
                if files[path] != nil || directories.contains(path) {
                    throw JetError(.diskIO, "\(path) already exists (create)")
                }
                let n = Node(); files[path] = n
                return MemoryFile(fs: self, path: path, node: n, writable: true)
            case .createOrTruncate:
                if files[path] == nil { try checkWritableLocked(path, "create") }
                let n = files[path] ?? Node()
                n.data = []; n.synced = []; n.pending = []
                files[path] = n
                return MemoryFile(fs: self, path: path, node: n, writable: true)
            }
        }
    }

    public func exists(_ path: String) -> Bool {
        lock.withLock { files[path] != nil || directories.contains(path) }
    }

    public func isDirectory(_ path: String) -> Bool { lock.withLock { directories.contains(path) } }

    public func isSymlink(_ path: String) -> Bool { false }

    public func list(_ directory: String) throws -> [String] {
        try checkAlive(directory)
        return try lock.withLock {
            guard directories.contains(directory) else {
                throw JetError(.fileNotFound, "\(directory) does not exist (list)")
            }
            let prefix = directory == "/" ? "/" : directory + "/"
            var names = Set<String>()
            for p in files.keys where p.hasPrefix(prefix) {
                let rest = p.dropFirst(prefix.count)
                if !rest.contains("/") { names.insert(String(rest)) }
            }
            for d in directories where d.hasPrefix(prefix) && d != directory {
                let rest = d.dropFirst(prefix.count)
                if !rest.contains("/") { names.insert(String(rest)) }
            }
            return names.sorted()
        }
    }

    public func remove(_ path: String) throws {
        try tick(path, .remove)
        try lock.withLock {
            try checkWritableLocked(path, "remove")
            if let n = files[path], locks[path] === n { locks[path] = nil }
            guard files.removeValue(forKey: path) != nil else {
                throw JetError(.fileNotFound, "\(path) does not exist (remove)")
            }
        }
    }

    public func removeDirectory(_ path: String) throws {
        try tick(path, .remove)
        try lock.withLock {
            try checkWritableLocked(path, "remove directory")
            let prefix = path + "/"
            if files.keys.contains(where: { $0.hasPrefix(prefix) }) || directories.contains(where: { $0.hasPrefix(prefix) }) {
                throw JetError(.diskIO, "\(path) is not empty (remove directory)")
            }
            guard directories.remove(path) != nil else {
                throw JetError(.fileNotFound, "\(path) does not exist (remove directory)")
            }
        }
    }

    public func rename(_ from: String, _ to: String) throws {
        try tick(from, .rename)
        try lock.withLock {
            try checkWritableLocked(from, "rename")
            try checkWritableLocked(to, "rename \(from) to")
            if let n = files.removeValue(forKey: from) {
                files[to] = n
                return
            }
            guard directories.contains(from) else { throw JetError(.fileNotFound, "\(from) does not exist (rename)") }
            // A directory moves with everything below it; only an empty target is replaced (POSIX).
            let tp = to + "/"
            if files.keys.contains(where: { $0.hasPrefix(tp) }) || directories.contains(where: { $0.hasPrefix(tp) }) || files[to] != nil {
                throw JetError(.diskIO, "\(to) is not empty (rename \(from))")
            }
            directories.remove(to)
            let prefix = from + "/"
            directories.remove(from); directories.insert(to)
            for d in directories where d.hasPrefix(prefix) {
                directories.remove(d); directories.insert(to + d.dropFirst(from.count))
            }
            for (p, n) in files where p.hasPrefix(prefix) {
                files.removeValue(forKey: p); files[to + p.dropFirst(from.count)] = n
            }
        }
    }

    public func createDirectory(_ path: String) throws {
        try tick(path, .create)
        try lock.withLock {
            try checkWritableLocked(path, "create directory")
            if directories.contains(path) || files[path] != nil {
                throw JetError(.diskIO, "\(path) already exists (create directory)")
            }
            guard directories.contains(FilePaths.directory(of: path)) else {
                throw JetError(.fileNotFound, "\(FilePaths.directory(of: path)) does not exist (create directory)")
            }
            directories.insert(path)
        }
    }

    /// Creates a directory and its parents (test setup only; counts no I/O).
    public func makeDirectories(_ path: String) {
        lock.withLock {
            var p = ""
            for part in path.split(separator: "/") {
                p += "/" + part
                directories.insert(p)
            }
        }
    }

    public func syncDirectory(_ path: String) throws { try tick(path, .sync) }

    public func lock(_ path: String, owner: String) throws -> any FileLock {
        try checkAlive(path)
        return try lock.withLock {
            if let held = locks[path] {
                let who = String(decoding: held.data, as: UTF8.self)
                throw JetError(.fileAccessDenied, "instance is in use by another process (\(who.isEmpty ? "unknown" : who)); "
                    + "wait for it to finish or stop it")
            }
            if files[path] == nil { try checkWritableLocked(path, "open lock file") }
            let n = files[path] ?? Node()
            // The content names the holder for others' messages (not synced, as on a real disk).
            n.data = Array(owner.utf8)
            files[path] = n
            locks[path] = n
            return MemoryLock(fs: self, path: path, node: n)
        }
    }

    public func canonicalPath(_ path: String) -> String {
        FilePaths.normalized(path.hasPrefix("/") ? path : "/" + path)
    }

    public func isWritableDirectory(_ path: String) -> Bool {
        lock.withLock { directories.contains(path) && !readOnly.contains(path) }
    }

    fileprivate func unlock(_ path: String, _ node: Node) {
        lock.withLock { if locks[path] === node { locks[path] = nil } }
    }
}

final class MemoryLock: FileLock, @unchecked Sendable {
    let fs: MemoryFileSystem
    let path: String
    let node: MemoryFileSystem.Node
    private let done = AtomicFlag()
    init(fs: MemoryFileSystem, path: String, node: MemoryFileSystem.Node) { self.fs = fs; self.path = path; self.node = node }
    func release() { if done.setOnce() { fs.unlock(path, node) } }
}

final class MemoryFile: StorageFile, @unchecked Sendable {
    let fs: MemoryFileSystem
    let path: String
    let node: MemoryFileSystem.Node
    let writable: Bool

    init(fs: MemoryFileSystem, path: String, node: MemoryFileSystem.Node, writable: Bool) {
        self.fs = fs; self.path = path; self.node = node; self.writable = writable
    }

    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try fs.checkAlive(path)
        if let fail = fs.failReads, fail(path) { throw JetError(.diskIO, "injected: I/O error while trying to read \(path)") }
        let count = fs.withNode(node) { n -> Int in
            let start = Int(offset)
            guard start < n.data.count else { return 0 }
            let count = min(buffer.count, n.data.count - start)
            n.data.withUnsafeBytes { src in
                buffer.baseAddress!.copyMemory(from: src.baseAddress! + start, byteCount: count)
            }
            return count
        }
        if count > 0, let hook = fs.readHook { hook(path, offset, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])) }
        return count
    }

    func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws {
        guard writable else { throw JetError(.diskIO, "\(path) is open read-only (write)") }
        try fs.tick(path, .write)
        let copy = [UInt8](bytes)
        fs.withNode(node) { n in
            MemoryFileSystem.apply(&n.data, Int(offset), copy)
            n.pending.append((Int(offset), copy))
        }
    }

    /// Counted (`flushBehindCount`); nothing else: it only starts what a sync finishes.
    func flushBehind() { fs.countFlushBehind(path) }

    /// An fsync: a local file can be made durable any number of times.
    func syncWritten() throws { try sync() }

    func sync() throws {
        try fs.tick(path, .sync)
        fs.countSync()
        fs.withNode(node) { n in
            n.synced = n.data
            n.pending = []
        }
    }

    func size() throws -> Int64 {
        try fs.checkAlive(path)
        return fs.withNode(node) { Int64($0.data.count) }
    }

    func truncate(to size: Int64) throws {
        try fs.tick(path, .write)
        fs.withNode(node) { n in
            let s = Int(size)
            if n.data.count > s { n.data.removeLast(n.data.count - s) } else {
                n.data.append(contentsOf: repeatElement(0, count: s - n.data.count))
            }
            // A truncate is metadata: durable at once in this model (the engine fsyncs after).
            n.synced = n.data
            n.pending = []
        }
    }

    func close() {}
}

/// A small deterministic generator (tests, fault plans, the workload generator).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
