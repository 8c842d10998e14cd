import ArgumentParser
import JetBackup
import JetStore

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "restore", abstract: "Hard restore of the backup set in DIR into a new instance TARGET.")
    @Argument(help: "Backup directory.") var dir: String?
    @OptionGroup var repo: RepoSetOptions
    @Option(help: "New instance directory (must not exist, or be empty).") var to: String
    @Option(help: ArgumentHelp("Replay up to the last commit at or before TIME (RFC 3339: 2026-11-25T03:36:00Z, "
                               + "2026-11-25T04:36:00.5+01:00), from the set's consistent time to its last commit ('show').",
                               valueName: "TIME"))
    var until: String?
    @Option(help: ArgumentHelp("Replay the logs only up to generation G (from the full backup's last generation to the set's last).",
                               valueName: "G"))
    var untilGeneration: UInt32?
    @Option(help: ArgumentHelp("Read at most RATE bytes a second from the set (50MiB).", valueName: "RATE")) var maxRate: RateArgument?
    @Option(help: "Progress: auto, bar, json, none.") var progress: ProgressMode = .auto
    @OptionGroup var output: JSONOption

    func validate() throws {
        if until != nil && untilGeneration != nil { throw ValidationError("give --until or --until-generation, not both") }
        if S3Location.isS3(to) { throw ValidationError("--to is the new instance's local directory; a restore does not write to S3") }
    }

    /// Where replay stops: `--until` (a time) or `--until-generation`.
    func stop() throws -> Instance.RecoveryStop? {
        if let g = untilGeneration { return .generation(g) }
        guard let until else { return nil }
        guard let t = RFC3339.microseconds(until) else {
            throw JetError(.invalidParameter, "--until '\(until)' is not an RFC 3339 time: write it as 2026-11-25T03:36:00Z, "
                + "2026-11-25T03:36:00.250Z or 2026-11-25T04:36:00+01:00 (nothing was touched)")
        }
        return .time(t)
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
                ri.stopAt = try stop()
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
                    ("lastCommitTime", s.lastCommitMicros.map { .string(BackupManifest.time($0)) } ?? .null),
                    ("stoppedAt", s.stoppedAt.map { .string($0.description) } ?? .null),
                    ("removedInterruptedRestore", .bool(s.removedInterruptedRestore)),
                ]).serialized())
            } else {
                if s.removedInterruptedRestore {
                    CLI.out("removed what an interrupted restore had left in \(s.target) first")
                }
                CLI.out("restored \(s.setDirectory) into \(s.target): \(s.databases) databases, \(s.generations) log generations, "
                        + "\(s.transactionsReplayed) transactions replayed, \(Text.format("%.2f", s.seconds)) s")
                if let p = s.stoppedAt {
                    let after = s.lastCommitMicros.map { " after the commit at \(BackupManifest.time($0))" } ?? ""
                    CLI.out("replay stopped at log position \(p)\(after); the log after it was discarded")
                }
            }
        }
    }
}
