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

/// The root command: lists the subcommands. Each subcommand parses, calls the library and
/// formats; none holds storage logic.
public struct JetBackupCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "jetbackup",
        abstract: "A storage engine and online backup tool modelled on ESE's JetBackupInstance.",
        discussion: "Every command takes -i/--instance PATH (default $JETBACKUP_INSTANCE, else the current directory).",
        version: JetBackupVersion.string,
        subcommands: [
            Init.self, Config.self, Db.self, Put.self, Get.self, Delete.self, Scan.self, Load.self,
            Digest.self, Info.self, Logs.self, Check.self, Backup.self, Restore.self, Verify.self,
            Show.self, Events.self, Serve.self, Repo.self, List.self, Expire.self, Status.self,
        ]
    )
    public init() {}

    /// Accepts `-i PATH` before the subcommand (`jetbackup -i /db info`) by moving it after
    /// the subcommand's own arguments (the option belongs to each subcommand).
    public static func normalize(_ args: [String]) -> [String] {
        var a = args
        var moved: [String] = []
        while let first = a.first {
            if (first == "-i" || first == "--instance") && a.count >= 2 {
                moved += a.prefix(2); a.removeFirst(2)
            } else if first.hasPrefix("--instance=") {
                moved.append(first); a.removeFirst()
            } else {
                break
            }
        }
        guard !moved.isEmpty else { return a }
        if let dd = a.firstIndex(of: "--") { a.insert(contentsOf: moved, at: dd) } else { a += moved }
        return a
    }

    /// Entry point of the executable. ArgumentParser's `main`, except that its messages (help,
    /// version, usage errors) are written with the checked writes of `CLI`: `--help > /dev/full`
    /// fails as every other command does instead of exiting 0.
    public static func start() {
        // Whatever this process opens read-write serves the commands of other processes.
        Served.register()
        do {
            let argv = Array(CommandLine.arguments.dropFirst())
            var command = try parseAsRoot(normalize(argv))
            // Another process owns the instance and serves it: the command runs through it.
            if Owner.runThrough(command, argv: argv) { return }
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let text = fullMessage(for: error)
            if code == .success {
                try? CLI.run(json: false) { if !text.isEmpty { CLI.out(text) } }
            } else if !text.isEmpty {
                CLI.err(text)
            }
            Glibc.exit(code.rawValue)
        }
    }
}
