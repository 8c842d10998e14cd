#if canImport(Glibc)
import Glibc
#endif

/// One end of a control connection: a Unix stream socket carrying `ControlMessage` frames.
/// Every wait is bounded (poll with a timeout), so a peer that stops reading or writing
/// costs a timeout, never a thread stuck forever.
public final class ControlSocket: @unchecked Sendable {
    public let fd: Int32
    private var closed = false
    private let lock = SpinLock()

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    public func close() {
        let first = lock.withLock { () -> Bool in defer { closed = true }; return !closed }
        if first { _ = Glibc.close(fd) }
    }

    /// Stops both directions at once (another thread blocked in `receive` wakes with an end).
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// The socket file of an instance.
    public static func path(instance: String) -> String { FilePaths.join(instance, FileNames.controlSocket) }

    /// Connects to the socket at `path`; nil when nobody listens there (no file, or a file
    /// left by a process that is gone).
    public static func connect(_ path: String) throws -> ControlSocket? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw JetError(.diskIO, "socket() failed (errno \(errno))") }
        let r = try withAddress(path) { addr, len in Glibc.connect(fd, addr, len) }
        if r != 0 {
            let e = errno
            _ = Glibc.close(fd)
            if e == ECONNREFUSED || e == ENOENT || e == ENOTSOCK { return nil }
            if e == EACCES || e == EPERM {
                throw JetError(.permissionDenied, "permission denied on \(path): the instance belongs to another user; run as its owner")
            }
            throw JetError(.diskIO, "could not connect to \(path): \(String(cString: strerror(e))) (errno \(e))")
        }
        return ControlSocket(fd: fd)
    }

    /// Binds and listens at `path` (mode 0600); a file already there is removed first (the
    /// caller holds the instance lock, so whoever made it is gone).
    static func listen(_ path: String) throws -> ControlSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw JetError(.diskIO, "socket() failed (errno \(errno))") }
        let s = ControlSocket(fd: fd)
        _ = unlink(path)
        // The socket is created 0600: no moment in which another user could connect.
        let old = umask(0o177)
        let r = try withAddress(path) { addr, len in bind(fd, addr, len) }
        let e = errno
        umask(old)
        guard r == 0 else { throw JetError(.diskIO, "could not listen on \(path): \(String(cString: strerror(e))) (errno \(e))") }
        guard Glibc.listen(fd, 16) == 0 else { throw JetError(.diskIO, "listen() on \(path) failed (errno \(errno))") }
        return s
    }

    /// A sockaddr_un for `path`. A path too long for sun_path (108 bytes) is reached through
    /// its directory opened with O_PATH, as /proc/self/fd/N/NAME.
    private static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) throws -> Int32 {
        var target = path
        var dirFD: Int32 = -1
        defer { if dirFD >= 0 { _ = Glibc.close(dirFD) } }
        var addr = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        if path.utf8.count >= capacity {
            dirFD = Glibc.open(FilePaths.directory(of: path), Self.oPath | O_DIRECTORY | O_CLOEXEC)
            guard dirFD >= 0 else { throw JetError(.diskIO, "could not open the directory of \(path) (errno \(errno))") }
            target = "/proc/self/fd/\(dirFD)/\(FilePaths.lastComponent(path))"
        }
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(target.utf8)
        guard bytes.count < capacity else { throw JetError(.invalidPath, "socket path \(path) is too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
            p[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// Linux's O_PATH and `struct ucred`, which Glibc's module leaves out without _GNU_SOURCE.
    private static let oPath: Int32 = 0o10000000
    private struct PeerCredentials { var pid: pid_t = 0; var uid: uid_t = 0; var gid: gid_t = 0 }

    /// The uid and pid of the process at the other end (SO_PEERCRED).
    func peer() -> (uid: uid_t, pid: pid_t)? {
        var cred = PeerCredentials()
        var len = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 else { return nil }
        return (cred.uid, cred.pid)
    }

    /// Accepts a connection; nil when the listener was shut down.
    func accept() -> ControlSocket? {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 {
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                return ControlSocket(fd: c)
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            if errno == EMFILE || errno == ENFILE { usleep(10_000); continue }
            return nil
        }
    }

    // MARK: Frames

    /// Sends one message; a peer that does not take it within `timeout` seconds is gone.
    public func send(_ m: ControlMessage, timeout: Double = 60) throws {
        let frame = m.encode()
        try frame.withUnsafeBytes { p in
            var done = 0
            while done < p.count {
                let n = Glibc.send(fd, p.baseAddress! + done, p.count - done, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                if n > 0 { done += n; continue }
                let e = errno
                if n < 0 && e == EINTR { continue }
                if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                    try wait(POLLOUT, timeout: timeout, what: "sending")
                    continue
                }
                throw Self.lost(e)
            }
        }
    }

    /// Receives one message. `timeout` bounds the wait for its first byte (nil: no bound);
    /// the rest of a frame must follow within `frameTimeout`.
    public func receive(timeout: Double?, frameTimeout: Double = 60) throws -> ControlMessage {
        var head = [UInt8](repeating: 0, count: 4)
        try read(into: &head, firstTimeout: timeout, restTimeout: frameTimeout)
        let n = Int(UInt32(head[0]) | UInt32(head[1]) << 8 | UInt32(head[2]) << 16 | UInt32(head[3]) << 24)
        guard n >= 1, n <= ControlMessage.maximumFrame else {
            throw JetError(.invalidParameter, "a control message of \(n) bytes is refused (the limit is \(ControlMessage.maximumFrame))")
        }
        var body = [UInt8](repeating: 0, count: n)
        try read(into: &body, firstTimeout: frameTimeout, restTimeout: frameTimeout)
        return try ControlMessage.decode(body)
    }

    private func read(into buffer: inout [UInt8], firstTimeout: Double?, restTimeout: Double) throws {
        var done = 0
        let count = buffer.count
        try buffer.withUnsafeMutableBytes { p in
            while done < count {
                try wait(POLLIN, timeout: done == 0 ? firstTimeout : restTimeout, what: "waiting for a message")
                let n = Glibc.recv(fd, p.baseAddress! + done, count - done, Int32(MSG_DONTWAIT))
                if n > 0 { done += n; continue }
                if n == 0 { throw ControlLost(message: "the other side closed the connection") }
                let e = errno
                if e == EINTR || e == EAGAIN || e == EWOULDBLOCK { continue }
                throw Self.lost(e)
            }
        }
    }

    private func wait(_ events: Int32, timeout: Double?, what: String) throws {
        let deadline = timeout.map { Clock.monotonicSeconds() + $0 }
        while true {
            var pfd = pollfd(fd: fd, events: Int16(events), revents: 0)
            let left = deadline.map { max(0, $0 - Clock.monotonicSeconds()) }
            let ms = left.map { Int32(min($0 * 1000, 1_000_000)) } ?? -1
            let r = poll(&pfd, 1, ms)
            if r > 0 { return }
            if r < 0 && errno == EINTR { continue }
            if r == 0, let left, left <= 0 {
                throw ControlLost(message: "the other side did not answer within \(Int(timeout ?? 0)) s (\(what))")
            }
            if r < 0 { throw Self.lost(errno) }
        }
    }

    static func lost(_ e: Int32) -> ControlLost {
        ControlLost(message: "the connection failed: \(String(cString: strerror(e))) (errno \(e))")
    }
}

/// The connection ended or stalled: the other side exited, was killed, or stopped reading.
public struct ControlLost: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
