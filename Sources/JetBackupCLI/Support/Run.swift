import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetBackup
import JetStore
import Synchronization

/// Runs a command body: JetError becomes the message on stderr (and JSON on stdout with
/// `--json`) and the exit status of the README's table; so does a failed write to standard
/// output. Nothing else decides an exit code.
enum CLI {
    static var owner: String {
        let args = (Served.current?.command.argv ?? Array(CommandLine.arguments.dropFirst())).prefix(3).joined(separator: " ")
        return "pid \(getpid()) (jetbackup \(args))"
    }

    /// The owner of the instance when `backup` writes a set from what that process serves.
    nonisolated(unsafe) static var remoteOwner: ControlClient?

    /// The working directory and environment of the command (a served command's are its client's).
    static var currentDirectory: String { Served.current?.command.cwd ?? FileManager.default.currentDirectoryPath }
    static func environment(_ name: String) -> String? {
        if let s = Served.current { return s.environment[name] }
        return ProcessInfo.processInfo.environment[name]
    }

    static func run(json: Bool, _ body: () throws -> Void) throws {
        do {
            try body()
            try finishOutput()
        } catch let e as OutputFailure {
            try failOutput(e, json: json)
        } catch let e as JetError {
            try fail(e, json: json)
        } catch let e as StatusError {
            try fail(e.error, json: json, status: e.status)
        } catch let e as ExitCode {
            // The command chose its status (check: 65 for damage); that outranks a lost report,
            // which still gets its message.
            if let f = outputFailure, f.errno != EPIPE { err("jetbackup: \(f.error.code.name) (\(f.error.code.rawValue)): \(f.error.message)") }
            throw e
        } catch let e as CleanExit {
            throw e
        } catch {
            try fail(JetError(.diskIO, "\(error)"), json: json)
        }
    }

    /// Called with the exit status before a failed command exits (`--metrics-file` records it).
    nonisolated(unsafe) static var onExit: ((Int32) -> Void)?

    /// Reports `error` and ends the command with its status (or `status`): the process exits,
    /// or, for a command served to a client, `ExitCode` carries the status to the server.
    static func fail(_ error: JetError, json: Bool, status: Int32? = nil) throws -> Never {
        let e = Hints.add(to: error)
        if json {
            out(JSONValue.object([("result", .string("error")), ("error", .string(e.code.name)),
                                  ("code", .int(Int64(e.code.rawValue))), ("message", .string(e.message))]).serialized())
        }
        err("jetbackup: \(e.code.name) (\(e.code.rawValue)): \(e.message)")
        if Served.current != nil { throw ExitCode(status ?? e.code.exitCode) }
        flush()
        onExit?(status ?? e.code.exitCode)
        exit(status ?? e.code.exitCode)
    }

    /// Standard output failed. A reader that went away (EPIPE: `| head -1`) ends us quietly as it
    /// ends `cat`: killed by SIGPIPE (status 141 in the shell), whatever disposition we inherited
    /// — not 0, because the output was not all delivered, and not an error message, because
    /// nothing went wrong on our side. Anything else (a full disk, an I/O error) is a failed
    /// command with its message on stderr (README "Exit status and errors").
    static func failOutput(_ f: OutputFailure, json: Bool) throws -> Never {
        // Served: the client's stdout is the client's to fail; here it means the client is gone.
        if Served.current != nil { throw ExitCode(128 + SIGPIPE) }
        if f.errno == EPIPE {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGPIPE)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            signal(SIGPIPE, SIG_DFL)
            raise(SIGPIPE)
            exit(128 + SIGPIPE)
        }
        try fail(f.error, json: json)
    }

    /// Flushes what stdio may hold and throws the first failed write to standard output.
    static func finishOutput() throws {
        if Served.current == nil && fflush(nil) != 0 { Output.record(errno) }
        if let f = outputFailure { throw f }
    }

    /// The first failed write to standard output of this command.
    static var outputFailure: OutputFailure? { Served.current.map { $0.outputFailure } ?? Output.failure }

    /// Throws once a write to standard output has failed, so a command that prints as it goes
    /// (`scan`, `load --progress commits`) stops at once instead of working for nobody.
    static func checkOutput() throws {
        if let f = outputFailure { throw f }
    }

    /// A line on standard output. A failed write is recorded, not ignored: `run` turns it into
    /// the command's failure, and nothing more is written after it (a later line would leave a
    /// hole in the output that looks like a complete one).
    static func out(_ s: String) { outRaw(Array((s + "\n").utf8)) }

    static func outRaw(_ b: [UInt8]) {
        if let s = Served.current {
            guard s.outputFailure == nil else { return }
            if let e = s.command.write(1, b) { s.recordOutput(e) }
            return
        }
        guard Output.failure == nil else { return }
        if let e = write(1, b) { Output.record(e) }
    }

    /// A line on standard error. Its failure is ignored: there is nowhere left to report it,
    /// and the exit status still says what happened.
    static func err(_ s: String) {
        if let served = Served.current { _ = served.command.write(2, Array((s + "\n").utf8)); return }
        write(2, Array((s + "\n").utf8))
    }

    /// All of standard input (`put DB KEY -`); a read error is JET_errDiskIO, not a trap.
    static func readStdin() throws -> [UInt8] {
        if let s = Served.current { return try s.command.readStdin() }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n == 0 { return out }
            if errno == EINTR { continue }
            throw JetError(.diskIO, "could not read the value from standard input (errno \(errno))")
        }
    }

    /// Writes to a standard stream with write(2), retrying short writes, EINTR and EAGAIN (a
    /// non-blocking descriptor we inherited); returns the errno of a failure, nil when all went
    /// out. Foundation's FileHandle traps on write errors, so it is not used for output.
    @discardableResult
    static func write(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        if let s = Served.current { return s.command.write(fd, bytes) }
        return bytes.withUnsafeBytes { p -> Int32? in
            var done = 0
            while done < p.count {
                let n = Glibc.write(fd, p.baseAddress! + done, p.count - done)
                if n > 0 { done += n; continue }
                if n == 0 { return EIO }
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK {
                    var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&pfd, 1, -1)
                    continue
                }
                return e
            }
            return nil
        }
    }

    static func flush() { fflush(nil) }

    static var stderrIsTerminal: Bool { Served.current?.command.stderrIsTerminal ?? (isatty(2) == 1) }

    /// Runs `body` on the instance at `path`. When it fails because `path` is no instance, the
    /// error gains the hint the engine cannot give: which command makes one, or restores a set.
    static func onInstance<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as JetError {
            let fs = PosixFileSystem()
            switch e.code {
            case .fileNotFound where BackupSetLayout.locate(path, fs: fs) != nil:
                // The engine sees only a directory without an instance in it; a backup set is
                // something only this layer and the backup library know.
                throw JetError(.softRecoveryOnBackupDatabase, "\(path) is a backup set, not an instance; restore it into a new directory: "
                    + "'jetbackup restore \(path) --to NEWDIR'")
            case .fileNotFound where fs.isDirectory(path) && !fs.exists(FilePaths.join(path, FileNames.parameters)):
                throw JetError(e.code, "\(e.message); create one with 'jetbackup init \(path)' or pass -i PATH")
            case .fileNotFound where !fs.exists(path):
                throw JetError(e.code, "\(e.message); create one with 'jetbackup init \(path)'")
            default:
                throw e
            }
        }
    }

    /// `Inspection.withLockedInstance` for the commands that read the files directly.
    static func withLockedInstance<T>(_ path: String, _ body: (InstanceParameters) throws -> T) throws -> T {
        // Served: this process holds the lock already (it owns the instance).
        if let s = Served.current, s.owns(path) { return try body(s.command.instance.parameters) }
        return try onInstance(path) {
            try waitingForLock { try Inspection.withLockedInstance(path, fs: PosixFileSystem(), owner: owner, body) }
        }
    }

    /// Opens the instance for a command; closes it after `body` (clean shutdown).
    static func withInstance<T>(_ path: String, mode: Instance.AccessMode = .readWrite, _ body: (Instance) throws -> T) throws -> T {
        // Served: the instance this process owns, as it is open (its owner closes it).
        if let s = Served.current, s.owns(path) { return try body(s.command.instance) }
        let inst = try onInstance(path) { try waitingForLock { try Instance.open(at: path, mode: mode, owner: owner) } }
        let r: T
        do {
            r = try body(inst)
        } catch {
            try? inst.close()
            throw error
        }
        // The work is done and durable (commits are in the log; a backup is complete and
        // recorded). A failure to shut down cleanly loses nothing — the next open recovers —
        // so it is a warning, not a failed command that a script would wrongly redo or undo.
        do {
            try inst.close()
        } catch let e as JetError {
            err("jetbackup: warning: \(e.code.name) (\(e.code.rawValue)) while closing the instance: \(e.message); "
                + "the work above is complete and durable, and the next open of the instance recovers")
        } catch {
            err("jetbackup: warning: closing the instance failed: \(error); the next open recovers")
        }
        return r
    }

    /// "Now" for the repository commands: the system clock, or `$JETBACKUP_NOW` (RFC 3339, UTC),
    /// the test seam that lets a test run weeks of cron jobs in seconds (README "Tests").
    static var clock: WallClock {
        get throws {
            guard let s = ProcessInfo.processInfo.environment["JETBACKUP_NOW"], !s.isEmpty else { return .system }
            guard let t = WallClock.parseRFC3339(s) else {
                throw JetError(.invalidParameter, "JETBACKUP_NOW='\(s)' is not an RFC 3339 UTC time (2026-11-25T03:36:00Z)")
            }
            return .fixed(microseconds: t)
        }
    }

    /// `--wait`: seconds to wait for the instance's or the repository's lock (nil: fail at once).
    /// `attempt`, repeated for `--wait` while another process holds the lock; a signal ends
    /// the wait (JET_errTermInProgress).
    static func waitingForLock<T>(_ attempt: () throws -> T) throws -> T {
        try LockWait.retrying(for: lockWait, isCancelled: { Signals.wasInterrupted }, attempt)
    }

    static var lockWait: Double? { LockWaitSetting.seconds.withLock { $0 } }

    static func human(bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) B" : "\(Text.format("%.1f", v)) \(units[u])"
    }

    static func time(_ us: UInt64) -> String { us == 0 ? "-" : Clock.rfc3339(microseconds: us) }
}

/// An error with the exit status it ends the command with, where the table's status for its
/// code is not the one (a client the owner refuses: 77).
struct StatusError: Error {
    let error: JetError
    let status: Int32?
}

/// The `--wait` of this run (one command a process).
enum LockWaitSetting {
    static let seconds = Mutex<Double?>(nil)
}

/// The first failed write to standard output (an errno), kept for `CLI.run`.
enum Output {
    private static let firstErrno = Atomic<Int32>(0)

    static func record(_ e: Int32) {
        _ = firstErrno.compareExchange(expected: 0, desired: e == 0 ? EIO : e, ordering: .relaxed)
    }

    static var failure: OutputFailure? {
        let e = firstErrno.load(ordering: .relaxed)
        return e == 0 ? nil : OutputFailure(errno: e)
    }
}

/// Standard output could not be written: ENOSPC is JET_errDiskFull, EPIPE a reader that went
/// away, anything else JET_errDiskIO.
struct OutputFailure: Error {
    let errno: Int32

    var error: JetError {
        switch errno {
        case ENOSPC, EDQUOT:
            JetError(.diskFull, "could not write to standard output: no space left on device; free space and run the command again")
        default:
            JetError(.diskIO, "could not write to standard output: \(String(cString: strerror(errno))) (errno \(errno))")
        }
    }
}

/// A one-line progress bar on stderr (only when stderr is a terminal).
struct ProgressBar {
    var label: String
    var lastDraw = 0.0

    mutating func draw(done: Int, total: Int, detail: String = "") {
        let now = Clock.monotonicSeconds()
        guard now - lastDraw > 0.1 || done >= total else { return }
        lastDraw = now
        let frac = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        CLI.write(2, Array("\r\(label) [\(bar)] \(Text.format("%5.1f", frac * 100))% \(detail)\u{1B}[K".utf8))
    }

    func finish() { CLI.write(2, [0x0A]) }
}
