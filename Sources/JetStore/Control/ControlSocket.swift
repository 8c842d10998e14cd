#if canImport(Glibc)
import Glibc
#endif

/// One end of a control connection: a Unix stream socket carrying `ControlMessage` frames.
/// Every wait is bounded (poll with a timeout), so a peer that stops reading or writing
/// costs a timeout, never a thread stuck forever.
public final class ControlSocket: @unchecked Sendable {
    public let fd: Int32
    private var closed = false
    private let lock = Lock()
    /// Held for a whole frame: frames sent from two threads (a backup's events and its abort,
    /// the owner's answers and its shutdown notice) never interleave on the stream.
    private let sendLock = Lock()

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
        // The socket is created 0600: no moment in which another user could connect. Linux
        // gives the bound file the mode of the socket's own inode (less the umask), so it is
        // set on the descriptor first; the umask is not touched, being the whole process's
        // (another thread creating a directory meanwhile would get it without search rights).
        guard fchmod(fd, 0o600) == 0 else { throw JetError(.diskIO, "fchmod() of a new socket failed (errno \(errno))") }
        let r = try withAddress(path) { addr, len in bind(fd, addr, len) }
        let e = errno
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
        try sendLock.withLock { try frame.withUnsafeBytes { try sendAll($0, timeout: timeout) } }
    }

    /// Sends a `.data` frame of `bytes` from where they are: no frame is built around them, so
    /// a database chunk is copied once, by the kernel, on its way to the peer.
    public func sendData(_ bytes: UnsafeRawBufferPointer, timeout: Double = 60) throws {
        guard bytes.count <= ControlMessage.maximumChunk else {
            throw JetError(.invalidParameter, "a control data frame of \(bytes.count) bytes is over the \(ControlMessage.maximumChunk)-byte limit")
        }
        var head = WireWriter()
        head.u32(UInt32(5 + bytes.count)); head.tag(ControlMessage.dataTag); head.u32(UInt32(bytes.count))
        try sendLock.withLock {
            try head.bytes.withUnsafeBytes { try sendAll($0, timeout: timeout) }
            try sendAll(bytes, timeout: timeout)
        }
    }

    private func sendAll(_ p: UnsafeRawBufferPointer, timeout: Double) throws {
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

    /// Lets the kernel queue up to `bytes` this side sent and the peer has not read yet (as far
    /// as net.core.wmem_max allows): fewer wake-ups per chunk. Kernel memory, bounded by it.
    func setSendBuffer(_ bytes: Int32) {
        var v = bytes
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Receives one message. `timeout` bounds the wait for its first byte (nil: no bound);
    /// the rest of a frame must follow within `frameTimeout`.
    public func receive(timeout: Double?, frameTimeout: Double = 60) throws -> ControlMessage {
        let n = try receiveLength(timeout: timeout, frameTimeout: frameTimeout)
        var body = [UInt8](repeating: 0, count: n)
        try body.withUnsafeMutableBytes { try read(into: $0, firstTimeout: frameTimeout, restTimeout: frameTimeout) }
        return try ControlMessage.decode(body)
    }

    /// What `receiveData` got: a `.data` frame, whose bytes (this many) are in the buffer, or
    /// another message.
    public enum Received: Sendable {
        case data(Int)
        case message(ControlMessage)
    }

    /// Receives one message; a `.data` frame's bytes go straight into `buffer` (no frame is
    /// buffered and decoded first). A `.data` frame larger than `buffer` is
    /// `JET_errInvalidParameter` (the peer sent more than was asked for).
    public func receiveData(into buffer: UnsafeMutableRawBufferPointer, timeout: Double?, frameTimeout: Double = 60) throws -> Received {
        let n = try receiveLength(timeout: timeout, frameTimeout: frameTimeout)
        var head: (UInt8, UInt32) = (0, 0)
        try withUnsafeMutableBytes(of: &head.0) { try read(into: $0, firstTimeout: frameTimeout, restTimeout: frameTimeout) }
        guard head.0 == ControlMessage.dataTag, n >= 5 else {
            var body = [UInt8](repeating: 0, count: n)
            body[0] = head.0
            try body.withUnsafeMutableBytes { try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[1...]), firstTimeout: frameTimeout, restTimeout: frameTimeout) }
            return .message(try ControlMessage.decode(body))
        }
        try withUnsafeMutableBytes(of: &head.1) { try read(into: $0, firstTimeout: frameTimeout, restTimeout: frameTimeout) }
        let count = Int(UInt32(littleEndian: head.1))
        guard count == n - 5 else { throw JetError(.invalidParameter, "a control data frame of \(n) bytes says it holds \(count)") }
        guard count <= buffer.count else {
            throw JetError(.invalidParameter, "a control data frame holds \(count) bytes where at most \(buffer.count) were asked for")
        }
        try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), firstTimeout: frameTimeout, restTimeout: frameTimeout)
        return .data(count)
    }

    /// A frame's length prefix, checked against `maximumFrame`.
    private func receiveLength(timeout: Double?, frameTimeout: Double) throws -> Int {
        var raw: UInt32 = 0
        try withUnsafeMutableBytes(of: &raw) { try read(into: $0, firstTimeout: timeout, restTimeout: frameTimeout) }
        let n = Int(UInt32(littleEndian: raw))
        guard n >= 1, n <= ControlMessage.maximumFrame else {
            throw JetError(.invalidParameter, "a control message of \(n) bytes is refused (the limit is \(ControlMessage.maximumFrame))")
        }
        return n
    }

    private func read(into p: UnsafeMutableRawBufferPointer, firstTimeout: Double?, restTimeout: Double) throws {
        var done = 0
        let count = p.count
        while done < count {
            // Data already queued is read without a poll first (one system call per piece).
            let n = Glibc.recv(fd, p.baseAddress! + done, count - done, Int32(MSG_DONTWAIT))
            if n > 0 { done += n; continue }
            if n == 0 { throw ControlLost(message: "the other side closed the connection") }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                try wait(POLLIN, timeout: done == 0 ? firstTimeout : restTimeout, what: "waiting for a message")
                continue
            }
            throw Self.lost(e)
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
