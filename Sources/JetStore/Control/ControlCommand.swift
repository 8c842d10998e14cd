#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A command a client asked the owner to run (the tool above the engine registered what runs
/// it): its arguments and context, and the client's standard streams over the connection.
/// While it runs, a watcher reads the connection: a client that interrupts (SIGINT) or goes
/// away sets `isInterrupted`, which the command polls as it would its own signals.
public final class ControlCommand: @unchecked Sendable {
    public let argv: [String]
    public let cwd: String
    /// `NAME=VALUE` of the client's environment that the tool asked to pass.
    public let environment: [String]
    public let stderrIsTerminal: Bool
    public var instance: Instance { connection.instance }

    private let connection: Connection
    private let state = Condition()
    private var interrupted = false
    private var gone = false
    private var done = false
    private var watcherDone = false
    private var stdin: [UInt8]?
    /// `finish` writes to this pipe to wake the watcher at once: the command's end (and the
    /// client's exit status) never waits for a poll to time out.
    private var wake: [Int32] = [-1, -1]

    init(connection: Connection, argv: [String], cwd: String, environment: [String], stderrIsTerminal: Bool) {
        self.connection = connection
        self.argv = argv
        self.cwd = cwd
        self.environment = environment
        self.stderrIsTerminal = stderrIsTerminal
        if pipe(&wake) == 0 { for fd in wake { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } } else { wake = [-1, -1] }
        Threads.start(name: "jetstore-control-watch") { [self] in watch() }
    }

    /// The client interrupted the command or went away; or the owner is shutting down.
    public var isInterrupted: Bool { state.withLock { interrupted } || connection.server.isStopping }

    /// Writes to the client's standard output (1) or error (2); returns an errno on failure
    /// (EPIPE once the client is gone), nil when sent.
    public func write(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        if state.withLock({ gone }) { return EPIPE }
        var o = 0
        repeat {
            let e = min(bytes.count, o + ControlMessage.maximumChunk)
            let slice = Array(bytes[o..<e])
            do {
                try connection.socket.send(fd == 2 ? .stderr(slice) : .stdout(slice), timeout: connection.timeout)
            } catch {
                state.withLock { gone = true; interrupted = true }
                return EPIPE
            }
            o = e
        } while o < bytes.count
        return nil
    }

    /// All of the client's standard input, asked for when the command needs it.
    public func readStdin() throws -> [UInt8] {
        do { try connection.socket.send(.needStdin, timeout: connection.timeout) } catch {
            throw JetError(.diskIO, "could not read standard input: the client went away")
        }
        state.lock()
        defer { state.unlock() }
        while stdin == nil && !gone { state.wait() }
        guard let s = stdin else { throw JetError(.diskIO, "could not read standard input: the client went away") }
        return s
    }

    private func watch() {
        defer { state.withLock { watcherDone = true; state.broadcast() } }
        while !state.withLock({ done }) {
            var pfds = [pollfd(fd: connection.socket.fd, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            // Without the pipe (pipe failed: out of descriptors), a short poll bounds the wait.
            let r = poll(&pfds, wake[0] >= 0 ? 2 : 1, wake[0] >= 0 ? -1 : 100)
            if r <= 0 || pfds[0].revents == 0 { continue }
            do {
                switch try connection.socket.receive(timeout: 1, frameTimeout: connection.timeout) {
                case .interrupt: state.withLock { interrupted = true }
                case .stdinData(let b): state.withLock { stdin = b; state.broadcast() }
                default: break
                }
            } catch {
                state.withLock { gone = true; interrupted = true; state.broadcast() }
                return
            }
        }
    }

    /// The command returned: the watcher stops before the connection is used or closed again.
    func finish() {
        state.lock()
        done = true
        state.unlock()
        if wake[1] >= 0 { var b: UInt8 = 1; _ = Glibc.write(wake[1], &b, 1) }
        state.lock()
        while !watcherDone { state.wait() }
        state.unlock()
    }

    deinit { for fd in wake where fd >= 0 { _ = Glibc.close(fd) } }
}
