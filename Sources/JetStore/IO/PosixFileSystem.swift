#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage
import CFileIO

/// Maps an errno to the ESE error the README's error table gives: no space is `JET_errDiskFull`, no access
/// `JET_errPermissionDenied`, anything else `JET_errDiskIO`; the message names the operation
/// and the path.
func ioError(_ errno: Errno, _ operation: String, _ path: String) -> JetError {
    switch errno {
    case .noSpace, .diskQuotaExceeded:
        return JetError(.diskFull, "no space left on device while trying to \(operation) \(path); free space and try again")
    case .noSuchFileOrDirectory:
        return JetError(.fileNotFound, "\(path) does not exist (\(operation))")
    case .permissionDenied, .notPermitted:
        return JetError(.permissionDenied, "permission denied while trying to \(operation) \(path): "
            + "it belongs to another user or its mode forbids it; run as its owner or change its permissions")
    default:
        return JetError(.diskIO, "I/O error while trying to \(operation) \(path): \(errno.description)")
    }
}

/// Runs a Glibc call that returns -1 and sets errno on failure, once, in one place.
@inline(__always)
func valueOrErrno(_ operation: String, _ path: String, _ body: () -> Int32) throws -> Int32 {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = Errno(rawValue: errno)
        if e == .interrupted { continue }
        throw ioError(e, operation, path)
    }
}

public final class PosixFile: StorageFile, @unchecked Sendable {
    // The descriptor is immutable after init; the kernel serializes pread/pwrite.
    public let path: String
    let fd: FileDescriptor
    private let closed = AtomicFlag()
    /// Set while the descriptor is open with O_DIRECT.
    let direct = AtomicFlag()

    init(path: String, fd: FileDescriptor, direct: Bool = false) {
        self.path = path
        self.fd = fd
        if direct { _ = self.direct.setOnce() }
    }

    deinit { if !closed.isSet { try? fd.close() } }

    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var done = 0
        while done < buffer.count {
            let n: Int
            do {
                n = try fd.read(fromAbsoluteOffset: offset + Int64(done),
                                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
                                retryOnInterrupt: true)
            } catch let e as Errno {
                throw ioError(e, "read", path)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    public func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws {
        do {
            _ = try fd.writeAll(toAbsoluteOffset: offset, bytes)
        } catch Errno.invalidArgument where direct.isSet {
            // A direct write the device will not take (alignment): from here on, through the
            // page cache like any other file.
            let flags = fcntl(fd.rawValue, F_GETFL)
            _ = fcntl(fd.rawValue, F_SETFL, flags & ~PosixFileSystem.directFlag)
            direct.clear()
            try write(at: offset, bytes)
        } catch let e as Errno {
            throw ioError(e, "write", path)
        }
    }

    public func write(at offset: Int64, gathering parts: [UnsafeRawBufferPointer]) throws {
        var iov = parts.filter { $0.count > 0 }.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress!), iov_len: $0.count) }
        var at = offset
        var first = 0
        while first < iov.count {
            let n = min(iov.count - first, 1024)
            let done = iov.withUnsafeMutableBufferPointer { b in
                Glibc.pwritev(fd.rawValue, b.baseAddress! + first, Int32(n), off_t(at))
            }
            if done < 0 {
                let e = Errno(rawValue: errno)
                if e == .interrupted { continue }
                if e == .invalidArgument && direct.isSet {
                    // The device will not take this direct write: through the page cache from here on.
                    let flags = fcntl(fd.rawValue, F_GETFL)
                    _ = fcntl(fd.rawValue, F_SETFL, flags & ~PosixFileSystem.directFlag)
                    direct.clear()
                    continue
                }
                throw ioError(e, "write", path)
            }
            // Skip what was written; a short write resumes inside a part.
            var left = done
            at += Int64(done)
            while left > 0 && first < iov.count {
                if left >= iov[first].iov_len {
                    left -= iov[first].iov_len
                    first += 1
                } else {
                    iov[first].iov_base = iov[first].iov_base! + left
                    iov[first].iov_len -= left
                    left = 0
                }
            }
        }
    }

    /// An fsync: a local file can be made durable any number of times.
    public func syncWritten() throws { try sync() }

    public func sync() throws {
        _ = try valueOrErrno("fsync", path) { fsync(fd.rawValue) }
    }

    public func size() throws -> Int64 {
        do {
            return try fd.seek(offset: 0, from: .end)
        } catch let e as Errno {
            throw ioError(e, "stat", path)
        }
    }

    public func truncate(to size: Int64) throws {
        do {
            try fd.resize(to: size)
        } catch let e as Errno {
            throw ioError(e, "truncate", path)
        }
    }

    /// A hole: the file's size is set past its end (ftruncate), no block is written.
    public func appendZeros(at end: Int64, count: Int) throws {
        guard count > 0 else { return }
        guard try size() == end else {
            throw JetError(.invalidParameter, "\(path) does not end at byte \(end); zeros are appended only at its end")
        }
        try truncate(to: end + Int64(count))
    }

    public func close() {
        if closed.setOnce() { try? fd.close() }
    }

    /// posix_fadvise(DONTNEED) starts writeback of the range's dirty pages without waiting
    /// (and lets the kernel drop the clean ones: a backup's output need not stay cached).
    public func startWriteback(offset: Int64, length: Int) {
        _ = posix_fadvise(fd.rawValue, off_t(offset), off_t(length), POSIX_FADV_DONTNEED)
    }

    /// sync_file_range(SYNC_FILE_RANGE_WRITE) over the whole file.
    public func flushBehind() {
        if !closed.isSet { _ = jb_start_writeback(fd.rawValue, 0, 0) }
    }

    /// posix_fadvise(WILLNEED): the kernel reads the range ahead, many requests in flight.
    public func willNeed(offset: Int64, length: Int) {
        _ = posix_fadvise(fd.rawValue, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
    }
}

/// A tiny once-flag, so `close()` and `deinit` never close a descriptor twice.
final class AtomicFlag: @unchecked Sendable {
    private var value = false
    private let lock = Lock()
    var isSet: Bool { lock.withLock { value } }
    /// Sets the flag; true if this call set it.
    func setOnce() -> Bool { lock.withLock { if value { return false }; value = true; return true } }
    func clear() { lock.withLock { value = false } }
}

final class PosixFileLock: FileLock, @unchecked Sendable {
    let file: PosixFile
    init(file: PosixFile) { self.file = file }
    func release() {
        _ = flock(file.fd.rawValue, LOCK_UN)
        file.close()
    }
}

/// The real file system. Files are created 0600 and directories 0700: backups and instances
/// hold the user's data and are readable by their owner only.
public struct PosixFileSystem: FileSystem {
    public init() {}

    /// O_DIRECT (not exported to Swift by Glibc); 0 where we do not use it.
    #if os(Linux) && arch(x86_64)
    static let directFlag: Int32 = 0o40000
    #elseif os(Linux) && arch(arm64)
    static let directFlag: Int32 = 0o200000
    #else
    static let directFlag: Int32 = 0
    #endif

    public func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
        let access: FileDescriptor.AccessMode
        var options: FileDescriptor.OpenOptions = [.noFollow]
        switch mode {
        case .readOnly: access = .readOnly
        case .readWrite, .readWriteDirect: access = .readWrite
        case .createNew: access = .readWrite; options.formUnion([.create, .exclusiveCreate])
        case .createOrTruncate: access = .readWrite; options.formUnion([.create, .truncate])
        case .createNewDirect: access = .readWrite; options.formUnion([.create, .exclusiveCreate])
        }
        do {
            if mode == .createNewDirect || mode == .readWriteDirect, Self.directFlag != 0 {
                let direct = FileDescriptor.OpenOptions(rawValue: options.rawValue | Self.directFlag)
                do {
                    let fd = try FileDescriptor.open(FilePath(path), access, options: direct,
                                                     permissions: [.ownerReadWrite], retryOnInterrupt: true)
                    return PosixFile(path: path, fd: fd, direct: true)
                } catch Errno.invalidArgument {
                    // The file system has no direct I/O (tmpfs): an ordinary file below.
                }
            }
            let fd = try FileDescriptor.open(FilePath(path), access, options: options,
                                             permissions: [.ownerReadWrite], retryOnInterrupt: true)
            return PosixFile(path: path, fd: fd)
        } catch let e as Errno {
            if e == .tooManySymbolicLinkLevels {
                throw JetError(.invalidParameter, "\(path) is a symbolic link; jetbackup does not follow links in instances and backup sets")
            }
            throw ioError(e, "open", path)
        }
    }

    /// Maps the file read-only (`FileBytes`); a file system that cannot map it is read.
    public func readWhole(_ path: String) throws -> FileBytes {
        let f = try open(path, .readOnly)
        defer { f.close() }
        let n = Int(try f.size())
        guard n > 0, let pf = f as? PosixFile else { return FileBytes(try readAll(path)) }
        let p = mmap(nil, n, PROT_READ, MAP_SHARED, pf.fd.rawValue, 0)
        guard let p, p != MAP_FAILED else { return FileBytes(try readAll(path)) }
        return FileBytes(mapping: UnsafeRawPointer(p), count: n)
    }

    /// The entry at `path` itself (a link is not followed); nil if there is none.
    private func entryType(_ path: String) -> FileType? {
        (try? Stat(FilePath(path), followTargetSymlink: false))?.type
    }

    public func exists(_ path: String) -> Bool { entryType(path) != nil }

    public func isDirectory(_ path: String) -> Bool { entryType(path) == .directory }

    public func isSymlink(_ path: String) -> Bool { entryType(path) == .symbolicLink }

    public func list(_ directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw ioError(Errno(rawValue: errno), "list", directory)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func remove(_ path: String) throws {
        _ = try valueOrErrno("remove", path) { unlink(path) }
    }

    public func removeDirectory(_ path: String) throws {
        _ = try valueOrErrno("remove directory", path) { rmdir(path) }
    }

    public func rename(_ from: String, _ to: String) throws {
        _ = try valueOrErrno("rename \(from) to", to) { Glibc.rename(from, to) }
    }

    public func createDirectory(_ path: String) throws {
        _ = try valueOrErrno("create directory", path) { mkdir(path, 0o700) }
    }

    public func syncDirectory(_ path: String) throws {
        let fd = try valueOrErrno("open directory", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY) }
        defer { _ = Glibc.close(fd) }
        _ = try valueOrErrno("fsync directory", path) { fsync(fd) }
    }

    /// Bytes of the owner record in `LOCK`: always written whole, so the file never reads empty
    /// once any holder has written it (truncating first, then writing, left a moment in which
    /// another process read an empty file and could only say "unknown").
    static let ownerRecordSize = 512

    public func lock(_ path: String, owner: String) throws -> any FileLock {
        // A holder may remove the lock file before it releases it (a backup directory's lock
        // goes when the run ends). A lock won on a file that is no longer at `path` guards
        // nothing, so it is dropped and the file now at `path` is locked instead.
        for _ in 0..<100 {
            let fdRaw = try valueOrErrno("open lock file", path) {
                Glibc.open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            }
            let file = PosixFile(path: path, fd: FileDescriptor(rawValue: fdRaw))
            if flock(fdRaw, LOCK_EX | LOCK_NB) != 0 {
                let e = Errno(rawValue: errno)
                var holder = [UInt8](repeating: 0, count: Self.ownerRecordSize)
                let n = (try? holder.withUnsafeMutableBytes { try file.read(at: 0, into: $0) }) ?? 0
                file.close()
                if e == .wouldBlock {
                    throw JetError(.fileAccessDenied, "instance is in use by another process (\(Self.describeHolder(holder[..<n]))); "
                        + "wait for it to finish or stop it")
                }
                throw ioError(e, "lock", path)
            }
            let held = try? FileDescriptor(rawValue: fdRaw).stat()
            let now = try? Stat(FilePath(path), followTargetSymlink: false)
            guard let held, let now, held.inode == now.inode, held.deviceID == now.deviceID else {
                file.close()
                continue
            }
            // The lock is the flock; the content only names the owner for others' messages: our
            // pid on the first line (so a reader can tell a name left by an exited holder), then
            // `owner`, padded to the fixed size and written in one piece over the previous record.
            var record = Array("\(getpid())\n\(owner)".utf8.prefix(Self.ownerRecordSize - 1))
            record += [UInt8](repeating: 0x20, count: Self.ownerRecordSize - 1 - record.count) + [0x0A]
            do {
                try record.withUnsafeBytes { try file.write(at: 0, $0) }
                try file.truncate(to: Int64(Self.ownerRecordSize))
            } catch {
                _ = flock(fdRaw, LOCK_UN)
                file.close()
                throw error
            }
            return PosixFileLock(file: file)
        }
        throw JetError(.diskIO, "could not lock \(path): the lock file kept being replaced while it was taken")
    }

    public func canonicalPath(_ path: String) -> String {
        let abs = path.hasPrefix("/") ? path : FilePaths.join(currentDirectory(), path)
        if let r = realpath(abs, nil) {
            defer { free(r) }
            return String(cString: r)
        }
        // Not there (yet): resolve the longest prefix that exists; the rest holds no links.
        let parts = abs.split(separator: "/")
        for k in stride(from: parts.count - 1, to: 0, by: -1) {
            guard let r = realpath("/" + parts[..<k].joined(separator: "/"), nil) else { continue }
            defer { free(r) }
            return FilePaths.normalized(String(cString: r) + "/" + parts[k...].joined(separator: "/"))
        }
        return FilePaths.normalized(abs)
    }

    private func currentDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buf, buf.count) != nil else { return "/" }
        return String(cString: buf)
    }

    /// Follows a link: a link to a directory is a directory one creates entries in.
    public func isWritableDirectory(_ path: String) -> Bool {
        (try? Stat(FilePath(path)))?.type == .directory && access(path, W_OK | X_OK) == 0
    }

    /// What a refused locker can say about the holder: its name, unless the record is empty (the
    /// holder took the lock an instant ago and has not written it yet) or was left by a process
    /// that has exited (the same instant, after an earlier holder).
    public static func describeHolder(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes, as: UTF8.self).trimmingWhitespace()
        let justTaken = "it has just taken the lock and not yet written its name"
        guard !text.isEmpty else { return justTaken }
        let lines = text.split(separator: "\n", maxSplits: 1)
        guard let pid = Int32(lines[0]), pid > 0 else { return text }
        if kill(pid, 0) != 0 && errno == ESRCH { return justTaken }
        return lines.count > 1 ? String(lines[1]).trimmingWhitespace() : "pid \(pid)"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace || c == "\0" { s.removeFirst() }
        while let c = s.last, c.isWhitespace || c == "\0" { s.removeLast() }
        return String(s)
    }
}
