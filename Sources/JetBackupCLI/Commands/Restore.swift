import ArgumentParser
import JetBackup
import JetStore

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hard restore of the backup set in DIR into a new instance TARGET.")
    @Argument(help: "Backup directory.") var dir: String?
    @OptionGroup var repo: RepoSetOptions
    @Option(help: "New instance directory (must not exist, or be empty).") var to: String
    @Option(help: ArgumentHelp("Replay the logs only up to generation G (from the full backup's last generation to the set's last).",
                               valueName: "G"))
    var untilGeneration: UInt32?
    @Option(help: ArgumentHelp("Read at most RATE bytes a second from the set (50MiB).", valueName: "RATE")) var maxRate: RateArgument?
    @Option(help: "Progress: auto, bar, json, none.") var progress: ProgressMode = .auto
    @OptionGroup var output: JSONOption

    func validate() throws {
        if S3Location.isS3(to) { throw ValidationError("--to is the new instance's local directory; a restore does not write to S3") }
    }

    func run() throws {
        try CLI.run(json: output.json) {
            // SIGINT/SIGTERM stop the restore between chunks (TARGET left as it was, exit 75).
            Signals.install()
            let bar = progress.showsBar
            let json = progress == .json
            var pb = ProgressBar(label: "restore")
            let s: RestoreInstance.Summary
            do {
                let set = try repo.directory(dir)
                var ri = RestoreInstance(maxBytesPerSecond: maxRate?.bytesPerSecond)
                ri.setFS = set.fs
                ri.untilGeneration = untilGeneration
                s = try ri.restore(from: set.path, to: Paths.absolute(to), owner: CLI.owner,
                                                  isCancelled: { Signals.wasInterrupted }) { st in
                    switch st {
                    case .begin(let total):
                        if json { CLI.err(JSONValue.object([("event", .string("begin")), ("kind", .string("restore")),
                                                            ("totalBytes", .int(total))]).serialized()) }
                    case .progress(let done, let total, let file):
                        if bar { pb.draw(done: Int(done), total: Int(total), detail: file) }
                        if json { CLI.err(JSONValue.object([("event", .string("progress")), ("bytesDone", .int(done)), ("bytesTotal", .int(total)),
                                                            ("file", .string(file))]).serialized()) }
                    }
                }
            } catch let e as JetError {
                if bar { pb.finish() }
                if json { CLI.err(JSONValue.object([("event", .string("fail")), ("error", .string(e.code.name)),
                                                    ("code", .int(Int64(e.code.rawValue)))]).serialized()) }
                throw e
            }
            if json { CLI.err(JSONValue.object([("event", .string("complete"))]).serialized()) }
            if bar { pb.finish() }
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string("ok")), ("set", .string(s.setDirectory)), ("target", .string(s.target)),
                    ("databases", .int(Int64(s.databases))), ("generations", .int(Int64(s.generations))),
                    ("transactionsReplayed", .int(Int64(s.transactionsReplayed))), ("seconds", .double(s.seconds)),
                    ("replaySeconds", .double(s.replaySeconds)), ("logBytesReplayed", .int(s.logBytesReplayed)),
                ]).serialized())
            } else {
                CLI.out(String(format: "restored %@ into %@: %d databases, %d log generations, %d transactions replayed, %.2f s",
                               s.setDirectory, s.target, s.databases, s.generations, s.transactionsReplayed, s.seconds))
            }
        }
    }
}
