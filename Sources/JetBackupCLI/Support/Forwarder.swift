#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Runs a command in the process that owns the instance: sends the arguments, working
/// directory, `JETBACKUP_*` environment and whether stderr is a terminal; writes what comes
/// back to this process's stdout and stderr; exits with the owner's status for the command.
/// SIGINT/SIGTERM here interrupt the command there, as they would interrupt it here.
struct Forwarder {
    let client: ControlClient

    func run(argv: [String]) -> Never {
        Signals.install()
        let env = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("JETBACKUP_") }.map { "\($0.key)=\($0.value)" }
        let json = Owner.jsonRequested(argv)
        let sock = client.socket
        do {
            try sock.send(.command(argv: argv, cwd: FileManager.default.currentDirectoryPath, environment: env,
                                   stderrIsTerminal: CLI.stderrIsTerminal))
            var interruptSent = false
            while true {
                if Signals.wasInterrupted && !interruptSent {
                    interruptSent = true
                    try sock.send(.interrupt)
                }
                var pfd = pollfd(fd: sock.fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&pfd, 1, 100)
                if r <= 0 { continue }
                switch try sock.receive(timeout: 1) {
                case .stdout(let b):
                    CLI.outRaw(b)
                    // Our stdout failed: stop the command there (it would write for nobody),
                    // and fail as the command fails here (README "Exit status and errors").
                    if let f = Output.failure {
                        sock.close()
                        try CLI.failOutput(f, json: false)
                    }
                case .stderr(let b):
                    CLI.write(2, b)
                case .needStdin:
                    let input = try CLI.readStdin()
                    try sock.send(.stdinData(input))
                case .exit(let status):
                    CLI.flush()
                    if let f = Output.failure { try CLI.failOutput(f, json: false) }
                    exit(status)
                case .error(let code, let message):
                    try? CLI.run(json: json) { throw JetError(JetError.Code(rawValue: code) ?? .instanceUnavailable, message) }
                    exit(1)
                default:
                    continue
                }
            }
        } catch let e as ControlLost {
            try? CLI.run(json: json) {
                throw JetError(.backupAbortByServer, "the process that owns \(client.instance) (pid \(client.ownerPID)) stopped serving while it ran "
                    + "the command (\(e.message)); whether the command completed is unknown: check, and run it again if needed")
            }
            exit(75)
        } catch {
            try? CLI.run(json: json) { throw error }
            exit(1)
        }
    }
}
