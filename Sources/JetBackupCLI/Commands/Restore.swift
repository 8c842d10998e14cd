import ArgumentParser
import JetBackup
import JetStore

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Hard restore of the backup set in DIR into a new instance TARGET.")
    @Argument(help: "Backup directory.") var dir: String
    @Option(help: "New instance directory (must not exist, or be empty).") var to: String
    @Option(help: "Progress: auto, bar, json, none.") var progress: String = "auto"
    @OptionGroup var output: JSONOption

    func validate() throws {
        guard ["auto", "bar", "json", "none"].contains(progress) else { throw ValidationError("--progress takes auto, bar, json or none") }
    }

    func run() throws {
        try CLI.run(json: output.json) {
            // SIGINT/SIGTERM stop the restore between chunks (TARGET left as it was, exit 75).
            Signals.install()
            let bar = progress == "bar" || (progress == "auto" && CLI.stderrIsTerminal)
            let json = progress == "json"
            var pb = ProgressBar(label: "restore")
            let s: RestoreInstance.Summary
            do {
                s = try RestoreInstance().restore(from: Paths.resolved(dir), to: Paths.absolute(to), owner: CLI.owner,
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

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Prove the backup set in DIR would restore, without writing anything.")
    @Argument(help: "Backup directory.") var dir: String
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let r = try SetVerifier().verify(Paths.resolved(dir))
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string("ok")), ("set", .string(r.setDirectory)), ("files", .int(Int64(r.files))),
                    ("databases", .int(Int64(r.databases))), ("pages", .int(Int64(r.pages))),
                    ("generations", .int(Int64(r.generations))), ("records", .int(Int64(r.records))), ("bytes", .int(r.bytes)),
                ]).serialized())
            } else {
                CLI.out("verified \(r.setDirectory): \(r.files) files, \(r.databases) databases (\(r.pages) pages), \(r.generations) log generations (\(r.records) records), \(CLI.human(bytes: Int(r.bytes))): the set restores")
            }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What the backup set in DIR holds.")
    @Argument(help: "Backup directory.") var dir: String
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let (setDir, m) = try SetVerifier().manifest(in: Paths.resolved(dir))
            let logs = m.files.filter { $0.kind == "log" }
            func sizes(_ files: [BackupManifest.File]) -> (Int64, Int64) {
                (files.reduce(0) { $0 + $1.size }, files.reduce(0) { $0 + ($1.rawSize ?? $1.size) })
            }
            let (stored, raw) = sizes(m.files)
            if output.json {
                CLI.out(JSONValue.object([
                    ("set", .string(setDir)), ("type", .string(m.chain.count > 1 ? "full+incremental" : "full")),
                    ("atomic", .bool(setDir.hasSuffix("/new") || setDir.hasSuffix("/old"))),
                    ("toolVersion", .string(m.toolVersion)), ("logSignature", .string(m.logSignature.random)),
                    ("databases", .array(m.databases.map { .object([("name", .string($0.name)), ("pages", .int(Int64($0.pages))), ("pageSize", .int(Int64($0.pageSize)))]) })),
                    ("chain", .array(m.chain.enumerated().map { i, b in
                        let fs = m.files.filter { $0.backup == i }
                        let (st, rw) = sizes(fs)
                        return .object([("type", .string(b.type)), ("start", .string(b.start)), ("end", .string(b.end)),
                                        ("genLow", .int(Int64(b.genLow))), ("genHigh", .int(Int64(b.genHigh))),
                                        ("files", .int(Int64(fs.count))), ("bytes", .int(st)), ("rawBytes", .int(rw)),
                                        ("compression", .string(b.compression)),
                                        ("compressionRatio", .double(st > 0 ? Double(rw) / Double(st) : 1))])
                    })),
                    ("files", .int(Int64(m.files.count))), ("bytes", .int(stored)), ("rawBytes", .int(raw)),
                    ("logGenerations", .int(Int64(logs.count))),
                ]).serialized())
                return
            }
            CLI.out("Backup set: \(setDir)")
            CLI.out("  type:          \(m.chain.count > 1 ? "full + \(m.chain.count - 1) incremental" : "full")\(setDir.hasSuffix("/new") ? " (atomic)" : "")")
            CLI.out("  written by:    jetbackup \(m.toolVersion)")
            CLI.out("  page size:     \(m.pageSize)")
            CLI.out("  databases:     \(m.databases.map { "\($0.name) (\($0.pages) pages)" }.joined(separator: ", "))")
            CLI.out("  generations:   \(m.chain[0].genLow)-\(m.lastGeneration) (\(logs.count) files)")
            CLI.out("  size:          \(CLI.human(bytes: Int(stored))) stored, \(CLI.human(bytes: Int(raw))) raw")
            CLI.out("  chain:")
            for (i, b) in m.chain.enumerated() {
                let fs = m.files.filter { $0.backup == i }
                let (st, rw) = sizes(fs)
                CLI.out(String(format: "    %-11@ %@ .. %@  generations %d-%d  %d files  %@  %@ (%.2fx)",
                               b.type, b.start, b.end, b.genLow, b.genHigh, fs.count, CLI.human(bytes: Int(st)), b.compression,
                               st > 0 ? Double(rw) / Double(st) : 1))
            }
        }
    }
}
