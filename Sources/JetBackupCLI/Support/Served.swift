import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore
import Synchronization

/// A command this process runs for a client of its control socket (README "Backups of a
/// running instance"): the same ParsableCommand as on the command line, against the instance
/// this process owns, with its standard streams, working directory, environment and
/// interruptions those of the client. `CLI.out`/`err`, `withInstance` and `Signals` consult
/// `Served.current` (a task-local value, bound for the command's thread only).
final class Served: Sendable {
    @TaskLocal static var current: Served?

    let command: ControlCommand
    private let outputErrno = Atomic<Int32>(0)

    init(_ command: ControlCommand) { self.command = command }

    var environment: [String: String] {
        var env: [String: String] = [:]
        for kv in command.environment {
            guard let eq = kv.firstIndex(of: "=") else { continue }
            env[String(kv[..<eq])] = String(kv[kv.index(after: eq)...])
        }
        return env
    }

    func recordOutput(_ e: Int32) { _ = outputErrno.compareExchange(expected: 0, desired: e == 0 ? EIO : e, ordering: .relaxed) }
    var outputFailure: OutputFailure? {
        let e = outputErrno.load(ordering: .relaxed)
        return e == 0 ? nil : OutputFailure(errno: e)
    }

    /// Whether `path` is the instance this process owns (then commands use it as it is open).
    func owns(_ path: String) -> Bool {
        FilePaths.normalized(path) == FilePaths.normalized(command.instance.path)
            || PosixFileSystem().canonicalPath(path) == PosixFileSystem().canonicalPath(command.instance.path)
    }

    /// Registers the handler that runs commands sent to any instance this process owns.
    static func register() {
        ControlServer.setCommandHandler { cmd in Served(cmd).run() }
    }

    /// Parses and runs the client's command; returns its exit status. Output goes to the
    /// client; nothing here exits the process.
    func run() -> Int32 {
        Served.$current.withValue(self) {
            do {
                var parsed = try JetBackupCommand.parseAsRoot(JetBackupCommand.normalize(command.argv))
                if let owned = parsed as? InstanceCommand, case .refuse(let why) = owned.whenOwned {
                    try CLI.run(json: false) { throw JetError(.fileAccessDenied, why(Int32(getpid()))) }
                    return 0
                }
                try parsed.run()
                try CLI.finishOutput()
                return 0
            } catch {
                let code = JetBackupCommand.exitCode(for: error)
                let text = JetBackupCommand.fullMessage(for: error)
                if code == .success {
                    if !text.isEmpty { CLI.out(text) }
                } else if !text.isEmpty {
                    CLI.err(text)
                }
                return code.rawValue
            }
        }
    }
}
