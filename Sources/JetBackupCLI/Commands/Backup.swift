import ArgumentParser
import Foundation
import JetBackup
import JetStore

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up the instance into DIR (JetBackupInstance); without DIR, truncate logs no longer needed.",
        discussion: "Full (DIR empty), --incremental (logs since the last backup, added to the set in DIR), "
            + "--atomic (the previous set survives a failed run).")

    @Argument(help: "Backup directory.") var dir: String?
    @Flag(help: "Only the log generations since the last full or incremental backup (JET_bitBackupIncremental).") var incremental = false
    @Flag(help: "Build the set in DIR/temp and swap it in (JET_bitBackupAtomic).") var atomic = false
    @Flag(help: "With --atomic: replace a set of another instance in DIR (refused otherwise).") var replaceForeign = false
    @Flag(help: .hidden) var snapshot = false
    /// `--compress-logs` alone is level 3; `--compress-logs=LEVEL` (or `--compress-logs LEVEL`) another.
    @Option(name: .customLong("compress-logs"), defaultAsFlag: Zstd.defaultLevel, parsing: .next,
            help: ArgumentHelp("Compress copied logs with zstd: --compress-logs[=LEVEL], level 1-19, default 3.", valueName: "LEVEL"))
    var compressLogsValue: Int? = nil
    @Option(help: "Progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on stderr), none.") var progress: ProgressMode = .auto
    @Flag(help: "No summary line.") var quiet = false
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard !replaceForeign || atomic else { throw ValidationError("--replace-foreign applies to --atomic only") }
    }

    func run() throws {
        try CLI.run(json: output.json) {
            var opts = BackupOptions(directory: dir.map(Paths.resolved))
            opts.incremental = incremental
            opts.atomic = atomic
            opts.snapshot = snapshot
            opts.replaceForeign = replaceForeign
            opts.owner = CLI.owner
            opts.compressionLevel = compressLogsValue
            Signals.install()
            opts.isCancelled = { Signals.wasInterrupted }
            let bar = progress.showsBar
            var pb = ProgressBar(label: "backup")
            let json = progress == .json
            let status: (BackupStatus) throws -> Void = { st in
                    switch st {
                    case .begin(let kind, let total):
                        if json { CLI.err(JSONValue.object([("event", .string("begin")), ("kind", .string(kind.rawValue)), ("totalBytes", .int(total))]).serialized()) }
                    case .progress(let done, let total, let file):
                        if json { CLI.err(JSONValue.object([("event", .string("progress")), ("bytesDone", .int(done)), ("bytesTotal", .int(total)), ("file", .string(file))]).serialized()) }
                        if bar { pb.draw(done: Int(done), total: Int(total), detail: file) }
                    case .complete:
                        if json { CLI.err(JSONValue.object([("event", .string("complete"))]).serialized()) }
                        if bar { pb.finish() }
                    case .fail(let e):
                        if json { CLI.err(JSONValue.object([("event", .string("fail")), ("error", .string(e.code.name)), ("code", .int(Int64(e.code.rawValue)))]).serialized()) }
                        if bar { pb.finish() }
                    }
            }
            let summary: BackupSummary
            if let owner = CLI.remoteOwner {
                // Another process owns the instance: it serves the engine's side, this process writes the set.
                summary = try JetBackupInstance.run(through: owner, opts, status: status)
            } else {
                summary = try CLI.withInstance(instance.path) { inst in try JetBackupInstance.run(inst, opts, status: status) }
            }
            report(summary)
        }
    }

    func report(_ s: BackupSummary) {
        let copied = s.generationsCopied.map { "\($0.lowerBound)-\($0.upperBound)" }
        let truncated = s.generationsTruncated.map { "\($0.lowerBound)-\($0.upperBound)" }
        if output.json {
            CLI.out(JSONValue.object([
                ("result", .string("ok")), ("type", .string(s.kind.rawValue)), ("atomic", .bool(s.atomic)),
                ("set", s.setDirectory.map { .string($0) } ?? .null), ("databases", .int(Int64(s.databases))),
                ("pages", .int(Int64(s.pages))),
                ("generationsCopied", copied.map { .string($0) } ?? .null),
                ("generationsTruncated", truncated.map { .string($0) } ?? .null),
                ("bytesRead", .int(s.bytesRead)), ("bytesStored", .int(s.bytesStored)),
                ("compression", .string(s.compression)), ("compressionRatio", .double((s.compressionRatio * 100).rounded() / 100)),
                ("seconds", .double(s.seconds)), ("mbPerSecond", .double(s.megabytesPerSecond)),
            ]).serialized())
        } else if !quiet {
            let type = s.kind == .full && s.atomic ? "full (atomic)" : s.kind.rawValue
            CLI.out(String(format: "%@ backup: %d databases, generations copied %@, truncated %@, %@ stored, compression %@ (%.2fx), %.2f s, "
                + "%.1f MB/s",
                           type, s.databases, copied ?? "none", truncated ?? "none", CLI.human(bytes: Int(s.bytesStored)), s.compression,
                           s.compressionRatio, s.seconds, s.megabytesPerSecond))
        }
    }
}
