import ArgumentParser
import JetBackup
import JetStore

struct Expire: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "expire",
        abstract: "Delete whole sets of the repository DIR that the retention policy does not keep.",
        discussion: "Keeps the --keep-full N newest complete sets, and with --keep-days D also every set needed to restore to "
            + "any moment of the last D days (README \"Retention\"). Never deletes the newest complete set, a set a running "
            + "backup holds, or a damaged set; deletes incomplete sets left by stopped backups.")
    @Argument(help: "The repository directory, or s3://BUCKET/PREFIX.") var dir: String
    @OptionGroup var store: StoreOptions
    @Option(help: "Keep the N newest complete sets (at least 1).") var keepFull: Int
    @Option(help: "Also keep every set needed to restore to any moment of the last D days.") var keepDays: Double?
    @Flag(help: "Say what would be deleted; delete nothing.") var dryRun = false
    @Option(help: ArgumentHelp("Wait up to DURATION for the repository lock.", valueName: "DURATION")) var wait: DurationArgument?
    @Option(help: ArgumentHelp("Write Prometheus metrics of this run to PATH.", valueName: "PATH")) var metricsFile: String?
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard keepFull >= 1 else { throw ValidationError("--keep-full must be 1 or more: the newest complete set is always kept") }
        if let d = keepDays, !(d >= 0 && d.isFinite) { throw ValidationError("--keep-days must be 0 or more") }
    }

    func run() throws {
        let t0 = Clock.monotonicSeconds()
        // A bad JETBACKUP_NOW fails the command inside CLI.run; the metrics then use the system clock.
        let clock = (try? CLI.clock) ?? .system
        var sets: Int?
        func writeMetrics(_ status: Int32) {
            guard let metricsFile else { return }
            let repository = S3Location.isS3(dir) ? dir : Paths.resolved(dir)
            var m = Metrics(job: "expire", labels: [("repository", repository)], success: status == 0, exitStatus: status,
                            durationSeconds: Clock.monotonicSeconds() - t0, now: clock.now())
            m.sets = sets
            do { try m.write(to: Paths.absolute(metricsFile)) } catch {
                CLI.err("jetbackup: warning: could not write the metrics file \(metricsFile): \(error)")
            }
        }
        CLI.onExit = metricsFile == nil ? nil : { writeMetrics($0) }
        try CLI.run(json: output.json) {
            let repo = try store.openRepository(dir)
            let r = try RepositoryExpire.run(repo, policy: Retention.Policy(keepFull: keepFull, keepDays: keepDays), dryRun: dryRun,
                                             owner: CLI.owner, wait: wait?.seconds)
            sets = r.setsLeft
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string("ok")), ("dryRun", .bool(dryRun)),
                    ("sets", .array(r.decisions.map { .object([("label", .string($0.label.description)),
                                                               ("action", .string($0.delete ? (dryRun ? "would delete" : "deleted") : "kept")),
                                                               ("reason", .string($0.reason))]) })),
                    ("removed", .int(Int64(dryRun ? 0 : r.removed.count))), ("setsLeft", .int(Int64(r.setsLeft))),
                ]).serialized())
            } else {
                for d in r.decisions {
                    CLI.out("\(d.label)  \(d.delete ? (dryRun ? "would delete" : "deleted") : "kept")  \(d.reason)")
                }
                for k in r.skipped { CLI.out("\(k.name)  skipped  \(k.reason)") }
                let n = r.decisions.filter(\.delete).count
                CLI.out(dryRun ? "dry run: \(n) sets would be deleted, nothing was" : "\(r.removed.count) sets deleted, \(r.setsLeft) left")
            }
        }
        writeMetrics(0)
    }
}
