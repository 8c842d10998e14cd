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

/// `jetbackup serve`: owns the instance and serves other processes of its user on
/// `INSTANCE/control.sock` (backups, and every command that runs against a live instance)
/// until SIGTERM or SIGINT; then running sessions are aborted and the instance shut down
/// cleanly (exit 0). Suitable for a systemd `Type=simple` service.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve",
        abstract: "Open the instance and serve backups and commands of other processes on INSTANCE/control.sock until SIGTERM/SIGINT.")
    @Option(help: "Seconds a client may stay silent before its connection (and backup session) is ended.") var idleTimeout: Double = 600
    @Option(help: "Seconds a client may take to read or finish sending a message.") var ioTimeout: Double = 60
    @OptionGroup var instance: InstanceOptions

    func run() throws {
        try CLI.run(json: false) {
            Signals.install()
            var opts = ControlServer.Options()
            opts.idleTimeout = idleTimeout
            opts.ioTimeout = ioTimeout
            let path = instance.path
            let inst = try CLI.onInstance(path) {
                try CLI.waitingForLock { try Instance.open(at: path, mode: .readWrite, owner: CLI.owner, controlOptions: opts) }
            }
            guard inst.controlServer != nil else {
                try? inst.close()
                throw JetError(.diskIO, "could not listen on \(ControlSocket.path(instance: path)) (see \(FileNames.events)); nothing is served")
            }
            inst.events.log(.instanceStart, "serving on \(FileNames.controlSocket)", [("pid", .int(Int64(getpid())))])
            CLI.out("serving \(path) (pid \(getpid()))")
            CLI.flush()
            while !Signals.wasInterrupted { usleep(50_000) }
            try inst.close()
            inst.events.log(.instanceStop, "stopped serving (signal)", [("pid", .int(Int64(getpid())))])
        }
    }
}
