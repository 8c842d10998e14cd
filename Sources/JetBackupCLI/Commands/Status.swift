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

/// A monitoring check (Nagios, systemd `OnFailure=`): one line on stdout, and the exit
/// status of the README's table: 0 recent and whole, 1 too old, 65 damaged, 78 no complete set.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status",
        abstract: "Exit 0 when the newest complete set of DIR is younger than --max-age and its manifest and sums check.")
    @Argument(help: "The repository directory, or s3://BUCKET/PREFIX.") var dir: String
    @OptionGroup var store: StoreOptions
    @Option(help: ArgumentHelp("The oldest the newest backup may be (26h, 1d).", valueName: "DURATION")) var maxAge: DurationArgument
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let repo = try store.openRepository(dir)
            let r = try RepositoryStatus.check(repo, maxAge: maxAge.seconds)
            let code: Int32 = switch r.verdict {
            case .ok: 0
            case .tooOld: 1
            case .damaged: 65
            case .noSet: 78
            }
            let word = switch r.verdict {
            case .ok: "OK"
            case .tooOld: "TOO OLD"
            case .damaged: "DAMAGED"
            case .noSet: "NO BACKUP"
            }
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string(r.verdict == .ok ? "ok" : "error")), ("status", .string(word)), ("message", .string(r.message)),
                    ("set", r.newest.map { .string($0.description) } ?? .null), ("ageSeconds", r.ageSeconds.map { .double($0) } ?? .null),
                ]).serialized())
            } else {
                CLI.out("\(word): \(r.message)")
            }
            if code != 0 {
                try CLI.finishOutput()
                throw ExitCode(code)
            }
        }
    }
}
