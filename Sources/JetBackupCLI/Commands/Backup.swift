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

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "backup",
        abstract: "Back up the instance into DIR (JetBackupInstance); without DIR, truncate logs no longer needed.",
        discussion: "Full (DIR empty), --incremental (logs since the last backup, added to the set in DIR), "
            + "--atomic (the previous set survives a failed run). With --repo DIR: a new set in the repository, or with "
            + "--incremental the newest set extended (a full when it cannot be, or when --full-every says it is time).")

    @Argument(help: "Backup directory, or s3://BUCKET/PREFIX.") var dir: String?
    @Option(help: ArgumentHelp("Back up into the repository DIR or s3://BUCKET/PREFIX (see 'repo init').", valueName: "DIR"))
    var repo: String?
    @OptionGroup var store: StoreOptions
    @Flag(help: "Only the log generations since the last full or incremental backup (JET_bitBackupIncremental).") var incremental = false
    @Option(help: ArgumentHelp("With --repo --incremental: take a full set when the newest set's full backup is this old (1d, 12h).",
                               valueName: "DURATION"))
    var fullEvery: DurationArgument?
    @Flag(help: "Build the set in DIR/temp and swap it in (JET_bitBackupAtomic).") var atomic = false
    @Flag(help: "With --atomic: replace a set of another instance in DIR (refused otherwise).") var replaceForeign = false
    @Flag(help: .hidden) var snapshot = false
    /// `--compress-logs` alone is level 3; `--compress-logs=LEVEL` (or `--compress-logs LEVEL`) another.
    @Option(name: .customLong("compress-logs"), defaultAsFlag: Zstd.defaultLevel, parsing: .next,
            help: ArgumentHelp("Compress copied logs with zstd: --compress-logs[=LEVEL], level 1-19, default 3.", valueName: "LEVEL"))
    var compressLogsValue: Int? = nil
    @Option(help: ArgumentHelp("Write at most RATE bytes a second into the set (50MiB).", valueName: "RATE")) var maxRate: RateArgument?
    @Option(help: ArgumentHelp("Write Prometheus metrics of this run to PATH (temporary file, then rename).", valueName: "PATH"))
    var metricsFile: String?
    @Option(help: "Progress: auto (a bar on a terminal, else nothing), bar, json (JSON lines on stderr), none.") var progress: ProgressMode = .auto
    @Flag(help: "No summary line.") var quiet = false
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard !replaceForeign || atomic else { throw ValidationError("--replace-foreign applies to --atomic only") }
        if repo != nil {
            guard dir == nil else { throw ValidationError("give a backup directory or --repo, not both") }
            guard !atomic else { throw ValidationError("--atomic does not apply to --repo: every repository set is written as a new directory") }
        }
        if fullEvery != nil && (repo == nil || !incremental) { throw ValidationError("--full-every applies to --repo --incremental only") }
        if store.keyFile != nil && repo == nil {
            throw ValidationError("--key-file applies to an encrypted repository (--repo DIR); a backup directory is not encrypted")
        }
    }

    func run() throws {
        let t0 = Clock.monotonicSeconds()
        // A bad JETBACKUP_NOW fails the command inside CLI.run; the metrics then use the system clock.
        let clock = (try? CLI.clock) ?? .system
        var result: (summary: BackupSummary?, sets: Int?) = (nil, nil)
        // The metrics are written whatever happens (a failed run is what monitoring wants to see).
        func writeMetrics(_ status: Int32) {
            guard let metricsFile else { return }
            let repository = repo.map { S3Location.isS3($0) ? $0 : Paths.resolved($0) }
            var m = Metrics(job: "backup", labels: [("instance", instance.path)] + (repository.map { [("repository", $0)] } ?? []),
                            success: status == 0, exitStatus: status, durationSeconds: Clock.monotonicSeconds() - t0, now: clock.now())
            m.bytesRead = result.summary?.bytesRead ?? 0
            m.bytesStored = result.summary?.bytesStored ?? 0
            m.sets = result.sets
            do { try m.write(to: Paths.absolute(metricsFile)) } catch {
                CLI.err("jetbackup: warning: could not write the metrics file \(metricsFile): \(error)")
            }
        }
        CLI.onExit = metricsFile == nil ? nil : { writeMetrics($0) }
        try CLI.run(json: output.json) {
            var opts = BackupOptions(directory: nil)
            if let dir {
                let (path, fs) = try store.location(dir)
                opts.directory = path
                opts.fs = fs
            }
            opts.incremental = incremental
            opts.atomic = atomic
            opts.snapshot = snapshot
            opts.replaceForeign = replaceForeign
            opts.owner = CLI.owner
            opts.compressionLevel = compressLogsValue
            opts.maxBytesPerSecond = maxRate?.bytesPerSecond
            opts.wait = CLI.lockWait
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
            if let repo {
                let r = try store.openRepository(repo)
                var ro = RepositoryBackup.Options(backup: opts)
                ro.incremental = incremental
                ro.fullEvery = fullEvery?.seconds
                ro.wait = CLI.lockWait
                let res: RepositoryBackup.Result
                if let owner = CLI.remoteOwner {
                    // Another process owns the instance: it serves the engine's side, this process writes the set.
                    res = try RepositoryBackup.run(through: owner, repository: r, ro, status: status)
                } else {
                    res = try CLI.withInstance(instance.path) { inst in try RepositoryBackup.run(inst, repository: r, ro, status: status) }
                }
                result = (res.summary, res.setsInRepository)
                report(res.summary, repository: res)
            } else {
                // The set's check reads the set while the instance opens (README "Changes").
                opts.setPrefetch = SetPrefetch.start(opts)
                let summary: BackupSummary
                if let owner = CLI.remoteOwner {
                    summary = try JetBackupInstance.run(through: owner, opts, status: status)
                } else {
                    summary = try CLI.withInstance(instance.path) { inst in try JetBackupInstance.run(inst, opts, status: status) }
                }
                result = (summary, nil)
                report(summary, repository: nil)
            }
        }
        writeMetrics(0)
    }

    func report(_ s: BackupSummary, repository r: RepositoryBackup.Result?) {
        let copied = s.generationsCopied.map { "\($0.lowerBound)-\($0.upperBound)" }
        let truncated = s.generationsTruncated.map { "\($0.lowerBound)-\($0.upperBound)" }
        if output.json {
            var fields: [(String, JSONValue)] = [
                ("result", .string("ok")), ("type", .string(s.kind.rawValue)), ("atomic", .bool(s.atomic)),
                ("set", s.setDirectory.map { .string($0) } ?? .null), ("databases", .int(Int64(s.databases))),
                ("pages", .int(Int64(s.pages))),
                ("generationsCopied", copied.map { .string($0) } ?? .null),
                ("generationsTruncated", truncated.map { .string($0) } ?? .null),
                ("bytesRead", .int(s.bytesRead)), ("bytesStored", .int(s.bytesStored)),
                ("compression", .string(s.compression)), ("compressionRatio", .double((s.compressionRatio * 100).rounded() / 100)),
                ("seconds", .double(s.seconds)), ("mbPerSecond", .double(s.megabytesPerSecond)),
            ]
            if let r {
                fields += [("label", .string(r.label.description)), ("reason", r.reason.map { .string($0) } ?? .null),
                           ("setsInRepository", .int(Int64(r.setsInRepository)))]
            }
            CLI.out(JSONValue.object(fields).serialized())
        } else if !quiet {
            if let r {
                CLI.out(r.kind == .full
                    ? "full backup into new set \(r.label)" + (r.reason.map { " because \($0)" } ?? "")
                    : "incremental backup extending set \(r.label)")
            }
            let type = s.kind == .full && s.atomic ? "full (atomic)" : s.kind.rawValue
            CLI.out("\(type) backup: \(s.databases) databases, generations copied \(copied ?? "none"), truncated \(truncated ?? "none"), "
                + "\(CLI.human(bytes: Int(s.bytesStored))) stored, compression \(s.compression) (\(Text.format("%.2f", s.compressionRatio))x), "
                + "\(Text.format("%.2f", s.seconds)) s, \(Text.format("%.1f", s.megabytesPerSecond)) MB/s")
        }
    }
}
