#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The owner's side of the control socket (README "Backups of a running instance"): the
/// process that opened an instance read-write listens on `INSTANCE/control.sock` (mode 0600,
/// in the 0700 instance directory) and serves clients of its own uid (and root) — checked
/// with SO_PEERCRED — one thread per connection:
///
/// - a backup session (`RemoteBackupSession` on the other side): the engine's session runs
///   here while the instance's writers keep committing; the backup is recorded and logs
///   truncated only when the client says its set is durable (`complete`). A client that goes
///   away (exit, kill -9, a dropped socket) or stalls past the timeouts aborts its session:
///   nothing recorded, nothing truncated, and the owner keeps serving.
/// - a command of the tool above the engine, run by the handler that tool registered
///   (`setCommandHandler`); the engine does not know what commands are.
///
/// Memory is bounded: one chunk buffer and one frame per connection (and the kernel's send
/// queue of at most `sendBuffer` bytes, whatever the client's speed), at most one backup
/// session (the engine refuses a second with `JET_errBackupInProgress`), `maximumConnections`.
public final class ControlServer: @unchecked Sendable {
    public struct Options: Sendable {
        /// A connection with nothing to say for this long is closed (its session aborted).
        public var idleTimeout: Double = 600
        /// A client that does not take a frame (or finish sending one) within this is gone.
        public var ioTimeout: Double = 60
        public var maximumConnections = 8
        public init() {}
    }

    /// The kernel's queue of a connection's frames not yet read by the client (SO_SNDBUF):
    /// a few database chunks, so the owner reads ahead of a client that writes.
    static let sendBuffer = 4 << 20

    public let instance: Instance
    public let path: String
    let options: Options
    private let listener: ControlSocket
    private let state = Condition()
    private var connections: [ObjectIdentifier: ControlSocket] = [:]
    private var stopping = false
    private var acceptDone = false

    /// What runs a command: given the request, returns the exit status.
    public typealias CommandHandler = @Sendable (ControlCommand) -> Int32
    private static let handlerLock = Lock()
    nonisolated(unsafe) private static var handler: CommandHandler?

    /// Registers what runs commands sent to any owner in this process (the tool above the
    /// engine does it once). Without one, commands are refused; backups are always served.
    public static func setCommandHandler(_ h: CommandHandler?) { handlerLock.withLock { handler = h } }
    static var commandHandler: CommandHandler? { handlerLock.withLock { handler } }

    /// Starts listening for `instance` (which must be open read-write).
    public init(instance: Instance, options: Options = Options()) throws {
        self.instance = instance
        self.options = options
        self.path = ControlSocket.path(instance: instance.path)
        listener = try ControlSocket.listen(path)
        Threads.start(name: "jetstore-control") { [self] in acceptLoop() }
    }

    /// Stops accepting, ends every connection (a running backup session aborts: its client
    /// gets an error), waits for their threads and removes the socket file.
    public func stop(grace: Double = 10) {
        let first = state.withLock { () -> Bool in defer { stopping = true }; return !stopping }
        guard first else { return }
        listener.shutdown()
        _ = unlink(path)
        // Woken by the accept thread's end and by each connection's; a connection still open
        // at the deadline is cut (its thread then ends on the error).
        let deadline = Clock.monotonicSeconds() + grace
        state.lock()
        while !(acceptDone && connections.isEmpty) {
            let left = deadline - Clock.monotonicSeconds()
            if left <= 0 { for c in connections.values { c.shutdown() } }
            state.wait(seconds: left > 0 ? left : 0.05)
        }
        state.unlock()
        listener.close()
    }

    public var isStopping: Bool { state.withLock { stopping } }

    private func acceptLoop() {
        defer { state.withLock { acceptDone = true; state.broadcast() } }
        while let c = listener.accept() {
            if state.withLock({ stopping }) { c.close(); break }
            let admitted = state.withLock { () -> Bool in
                guard connections.count < options.maximumConnections else { return false }
                connections[ObjectIdentifier(c)] = c
                return true
            }
            guard admitted else {
                try? c.send(.error(code: JetError.Code.backupInProgress.rawValue,
                                   message: "the owner of \(instance.path) serves \(options.maximumConnections) clients already; try again later"),
                            timeout: 1)
                c.close()
                continue
            }
            Threads.start(name: "jetstore-control-client") { [self] in
                serve(c)
                state.withLock { _ = connections.removeValue(forKey: ObjectIdentifier(c)); state.broadcast() }
                c.close()
            }
        }
    }

    // MARK: One connection

    private func serve(_ c: ControlSocket) {
        guard let peer = c.peer(), peer.uid == geteuid() || peer.uid == 0 else {
            let who = c.peer().map { "uid \($0.uid), pid \($0.pid)" } ?? "unknown peer"
            instance.events.log(.controlRefused, "control connection refused: \(who) is not the owner's user", [("peer", .string(who))],
                                level: .warning)
            try? c.send(.error(code: JetError.Code.fileAccessDenied.rawValue,
                               message: "the process that owns \(instance.path) (pid \(getpid()), uid \(geteuid())) refuses \(who): "
                                   + "only its own user and root may use it; run as that user"), timeout: 1)
            return
        }
        do {
            guard case .hello(let version, _) = try c.receive(timeout: options.ioTimeout, frameTimeout: options.ioTimeout) else {
                try? c.send(.error(code: JetError.Code.invalidParameter.rawValue, message: "the first message must be the greeting"), timeout: 1)
                return
            }
            guard version == ControlMessage.version else {
                try? c.send(.error(code: JetError.Code.instanceUnavailable.rawValue,
                                   message: "the owner of \(instance.path) (pid \(getpid())) speaks control protocol version \(ControlMessage.version), "
                                       + "the client version \(version); use the same version of the tool as the owner"), timeout: 1)
                return
            }
            try c.send(.welcome(version: ControlMessage.version, pid: UInt32(getpid()), instance: instance.path), timeout: options.ioTimeout)
        } catch {
            return
        }
        c.setSendBuffer(Int32(ControlServer.sendBuffer))
        let conn = Connection(server: self, socket: c, peerPID: peer.pid)
        conn.run()
    }
}

/// One client's connection: its requests in order, and the backup session it may hold.
final class Connection {
    let server: ControlServer
    let socket: ControlSocket
    let peerPID: pid_t
    var session: BackupSession?
    var buffer: UnsafeMutableRawBufferPointer?
    var instance: Instance { server.instance }
    var timeout: Double { server.options.ioTimeout }

    init(server: ControlServer, socket: ControlSocket, peerPID: pid_t) {
        self.server = server
        self.socket = socket
        self.peerPID = peerPID
    }

    deinit { buffer?.deallocate() }

    func run() {
        var ending = "the client closed the connection"
        defer { endSession(ending) }
        while true {
            let m: ControlMessage
            do {
                m = try socket.receive(timeout: server.options.idleTimeout, frameTimeout: timeout)
            } catch let e as ControlLost {
                ending = e.message
                return
            } catch {
                // A message that does not decode: the peer is not a client we understand.
                let text = (error as? JetError)?.message ?? "\(error)"
                ending = "a malformed message (\(text))"
                try? socket.send(.error(code: JetError.Code.invalidParameter.rawValue, message: "malformed control message: \(text)"), timeout: 1)
                return
            }
            do {
                if case .command = m {
                    try runCommand(m)
                    // The command owned the connection's input; it ends with the connection.
                    ending = "the command ended"
                    return
                }
                if let reply = try handle(m) { try socket.send(reply, timeout: timeout) }
            } catch let e as ControlLost {
                ending = e.message
                return
            } catch {
                let e = (error as? JetError) ?? JetError(.diskIO, "\(error)")
                do { try socket.send(.error(code: e.code.rawValue, message: e.message), timeout: timeout) } catch { ending = "\(error)"; return }
            }
        }
    }

    /// Answers one request (nil: nothing to answer).
    private func handle(_ m: ControlMessage) throws -> ControlMessage? {
        switch m {
        case .backupBegin(let kind):
            guard session == nil else { throw JetError(.backupInProgress, "this connection already holds a backup session") }
            let s = try instance.beginBackup(kind)
            session = s
            instance.events.log(.controlSessionStart, "\(kind.rawValue) backup session for pid \(peerPID) started",
                                [("pid", .int(Int64(peerPID))), ("kind", .string(kind.rawValue))])
            return .sessionStarted(ControlMessage.SessionInfo(kind: s.kind, start: s.start, startTime: s.startTime, logSignature: s.logSignature,
                                                              previousEnd: s.previousEnd, pageSize: UInt32(s.pageSize),
                                                              logFileSize: UInt32(s.logFileSize), databases: s.databases))
        case .readDatabase(let name, let offset, let length):
            let s = try active()
            let want = Int(min(length, UInt32(ControlMessage.maximumChunk)))
            guard want >= s.pageSize else { throw JetError(.invalidParameter, "a database read is at least one page") }
            if buffer == nil || buffer!.count < want {
                buffer?.deallocate()
                buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ControlMessage.maximumChunk, alignment: 4096)
            }
            let b = UnsafeMutableRawBufferPointer(rebasing: buffer![0..<want])
            let n = try s.readDatabase(name, at: offset, into: b)
            // Sent from the buffer the pages were verified in. The client asks for the next
            // chunks before it has this one (RemoteBackupSession.readAhead): they wait in the
            // socket, and a send that does not fit waits for the client, which bounds this
            // side to the one buffer whatever the client's speed.
            try socket.sendData(UnsafeRawBufferPointer(rebasing: b[0..<n]), timeout: timeout)
            return nil
        case .rollLog:
            return .number(try active().rollLog())
        case .generations(let from, let through):
            let r = try active().generations(from: from, through: through)
            return .range(low: r.lowerBound, high: r.upperBound)
        case .readLog(let g, let prev):
            let log = try active().readLog(g, previousCreation: prev)
            try socket.send(.logFile(generation: log.generation, fileName: log.fileName, records: UInt32(log.records),
                                     size: UInt32(log.bytes.count)), timeout: timeout)
            var o = 0
            while o < log.bytes.count {
                let e = min(log.bytes.count, o + ControlMessage.maximumChunk)
                try log.bytes.withUnsafeBytes { try socket.sendData(UnsafeRawBufferPointer(rebasing: $0[o..<e]), timeout: timeout) }
                o = e
            }
            return nil
        case .currentGeneration:
            return .number(instance.currentGeneration)
        case .complete(let low, let high):
            let s = try active()
            guard low <= high else { throw JetError(.invalidParameter, "an empty range of generations") }
            let r = try s.complete(generations: low...high)
            session = nil
            instance.events.log(.controlSessionEnd, "backup session for pid \(peerPID) completed", [("pid", .int(Int64(peerPID)))])
            return r.map { .range(low: $0.lowerBound, high: $0.upperBound) } ?? .noRange
        case .abort:
            endSession("the client aborted it")
            return .ok
        case .event(let id, let level, let message, let data):
            instance.events.record(id: Int(id), level: level, message: message, data: data)
            return nil
        case .hello:
            throw JetError(.invalidParameter, "the greeting was already exchanged")
        default:
            throw JetError(.invalidParameter, "a message the owner does not take from a client")
        }
    }

    private func active() throws -> BackupSession {
        guard let s = session else { throw JetError(.invalidParameter, "no backup session is open on this connection") }
        return s
    }

    private func endSession(_ why: String) {
        guard let s = session else { return }
        session = nil
        s.abort()
        instance.events.log(.controlSessionEnd, "backup session for pid \(peerPID) aborted (\(why)): nothing recorded, no log truncated",
                            [("pid", .int(Int64(peerPID)))], level: .warning)
    }

    private func runCommand(_ m: ControlMessage) throws {
        guard case .command(let argv, let cwd, let env, let tty) = m else { return }
        guard let handler = ControlServer.commandHandler else {
            try socket.send(.error(code: JetError.Code.invalidParameter.rawValue,
                                   message: "the process that owns \(instance.path) (pid \(getpid())) serves backups only, not commands; "
                                       + "stop it to run this command"), timeout: timeout)
            return
        }
        let cmd = ControlCommand(connection: self, argv: argv, cwd: cwd, environment: env, stderrIsTerminal: tty)
        let status = handler(cmd)
        cmd.finish()
        try socket.send(.exit(status), timeout: timeout)
    }
}
