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

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Workload generator: write N deterministic records in batches, generating logs.")
    @Argument(help: "Database (created if missing).") var db: String
    // `.unconditional`: `--records -5` is a number for validate() to refuse with its range, not a flag.
    @Option(parsing: .unconditional, help: "Records to write.") var records: Int
    @Option(parsing: .unconditional, help: "Bytes per value.") var valueSize: Int = 100
    @Option(parsing: .unconditional, help: "Records per commit.") var batch: Int = 1000
    @Option(parsing: .unconditional, help: "Fraction of records that update an existing key (0 to 1).") var updateRatio: Double = 0
    @Option(parsing: .unconditional, help: "Seed of the record sequence.") var seed: UInt64 = 1
    @Option(help: ArgumentHelp("Progress: auto (a bar on a terminal), bar, none, commits (a line per durable commit on stdout: committed N), "
        + "or commit-times (committed N TIME: the commit's time, RFC 3339 with microseconds, as restore --until compares it)."))
    var progress: LoadProgressMode = .auto
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard records >= 0 else { throw ValidationError("--records must be 0 or more") }
        guard valueSize >= 0, valueSize <= Instance.maxValueLength else { throw ValidationError("--value-size must be 0 to \(Instance.maxValueLength)") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard updateRatio >= 0, updateRatio <= 1 else { throw ValidationError("--update-ratio must be between 0 and 1") }
    }

    func run() throws {
        try CLI.run(json: output.json) {
            let gen = LoadGenerator(seed: seed, valueSize: valueSize, updateRatio: updateRatio)
            let showBar = progress.showsBar
            var bar = ProgressBar(label: "load")
            let s = try CLI.withInstance(instance.path) { inst -> LoadGenerator.Summary in
                if !inst.databaseNames.contains(db) { try inst.createDatabase(db) }
                return try gen.run(inst, database: db, count: records, batch: batch) { done, time in
                    if progress == .commits { CLI.out("committed \(done)"); try CLI.checkOutput() }
                    if progress == .commitTimes {
                        CLI.out("committed \(done) \(time.map(BackupManifest.time) ?? "-")")
                        try CLI.checkOutput()
                    }
                    // Run for a client of the owner: stop when that client is interrupted or gone.
                    if Served.current?.command.isInterrupted == true {
                        throw JetError(.termInProgress, "the load was interrupted after \(done) records (all of them committed)")
                    }
                    if showBar { bar.draw(done: done, total: records, detail: "\(done) records") }
                }
            }
            if showBar { bar.finish() }
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string("ok")), ("records", .int(Int64(s.records))), ("inserts", .int(Int64(s.inserts))),
                    ("updates", .int(Int64(s.updates))), ("commits", .int(Int64(s.commits))), ("bytes", .int(Int64(s.bytes))),
                    ("logGenerations", .int(Int64(s.generationsWritten))), ("logBytes", .int(s.logBytes)), ("seconds", .double(s.seconds)),
                    ("recordsPerSecond", .double(s.recordsPerSecond)),
                ]).serialized())
            } else {
                CLI.out("loaded \(s.records) records (\(s.inserts) inserts, \(s.updates) updates) in \(s.commits) commits, "
                        + "\(CLI.human(bytes: s.bytes)), \(s.generationsWritten) log generations, \(Text.format("%.2f", s.seconds)) s, "
                        + "\(Text.format("%.0f", s.recordsPerSecond)) records/s")
            }
        }
    }
}
