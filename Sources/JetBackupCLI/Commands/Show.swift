import ArgumentParser
import JetBackup
import JetStore

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "What the backup set in DIR holds.")
    @Argument(help: "Backup directory.") var dir: String?
    @OptionGroup var repo: RepoSetOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let set = try repo.directory(dir)
            let (setDir, m) = try SetVerifier(fs: set.fs).manifest(in: set.path)
            let logs = m.files.filter { $0.kind == .log }
            let (stored, raw) = Self.sizes(m.files)
            if output.json {
                CLI.out(JSONValue.object([
                    ("set", .string(setDir)), ("type", .string(m.chain.count > 1 ? "full+incremental" : "full")),
                    ("atomic", .bool(setDir.hasSuffix("/new") || setDir.hasSuffix("/old"))),
                    ("toolVersion", .string(m.toolVersion)), ("logSignature", .string(m.logSignature.random)),
                    ("databases", .array(m.databases.map { .object([("name", .string($0.name)), ("pages", .int(Int64($0.pages))), ("pageSize", .int(Int64($0.pageSize)))]) })),
                    ("chain", .array(m.chain.indices.map { chainEntry(m, $0) })),
                    ("files", .int(Int64(m.files.count))), ("bytes", .int(stored)), ("rawBytes", .int(raw)),
                    ("logGenerations", .int(Int64(logs.count))),
                ] + Self.restorableTimes(m)).serialized())
                return
            }
            CLI.out("Backup set: \(setDir)")
            CLI.out("  type:          \(m.chain.count > 1 ? "full + \(m.chain.count - 1) incremental" : "full")\(setDir.hasSuffix("/new") ? " (atomic)" : "")")
            CLI.out("  written by:    jetbackup \(m.toolVersion)")
            CLI.out("  page size:     \(m.pageSize)")
            CLI.out("  databases:     \(m.databases.map { "\($0.name) (\($0.pages) pages)" }.joined(separator: ", "))")
            CLI.out("  generations:   \(m.chain[0].genLow)-\(m.lastGeneration) (\(logs.count) files)")
            CLI.out("  size:          \(CLI.human(bytes: Int(stored))) stored, \(CLI.human(bytes: Int(raw))) raw")
            if let from = m.consistentMicros, let to = m.endMicros {
                CLI.out("  restorable to: \(BackupManifest.time(from)) .. \(BackupManifest.time(to)) (restore --until TIME)")
            } else {
                CLI.out("  restorable to: log generations \(m.chain[0].genHigh)-\(m.lastGeneration) (restore --until-generation G; "
                    + "this set records no commit times)")
            }
            CLI.out("  chain:")
            for (i, b) in m.chain.enumerated() {
                let fs = m.files.filter { $0.backup == i }
                let (st, rw) = Self.sizes(fs)
                let ratio = Text.format("%.2f", st > 0 ? Double(rw) / Double(st) : 1)
                CLI.out("    \(Text.padded(b.type.rawValue, to: 11, cutting: false)) \(b.start) .. \(b.end)  generations \(b.genLow)-\(b.genHigh)  "
                        + "\(fs.count) files  \(CLI.human(bytes: Int(st)))  \(b.compression) (\(ratio)x)")
            }
        }
    }

    /// What `restore --until` accepts: from the set's consistent time to its last commit (null
    /// for a set that records no commit times).
    static func restorableTimes(_ m: BackupManifest) -> [(String, JSONValue)] {
        [("consistentTime", m.consistentMicros.map { .string(BackupManifest.time($0)) } ?? .null),
         ("lastCommitTime", m.endMicros.map { .string(BackupManifest.time($0)) } ?? .null)]
    }

    /// Bytes stored and bytes before compression.
    static func sizes(_ files: [BackupManifest.File]) -> (Int64, Int64) {
        (files.reduce(0) { $0 + $1.size }, files.reduce(0) { $0 + ($1.rawSize ?? $1.size) })
    }

    /// One backup of the chain, for `--json`.
    func chainEntry(_ m: BackupManifest, _ i: Int) -> JSONValue {
        let b = m.chain[i]
        let (st, rw) = Self.sizes(m.files.filter { $0.backup == i })
        let files = m.files.filter { $0.backup == i }.count
        return .object([
            ("type", .string(b.type.rawValue)), ("start", .string(b.start)), ("end", .string(b.end)),
            ("genLow", .int(Int64(b.genLow))), ("genHigh", .int(Int64(b.genHigh))),
            ("files", .int(Int64(files))), ("bytes", .int(st)), ("rawBytes", .int(rw)),
            ("compression", .string(b.compression)),
            ("compressionRatio", .double(st > 0 ? Double(rw) / Double(st) : 1)),
            ("lastCommitTime", b.lastCommitMicros.map { .string(BackupManifest.time($0)) } ?? .null),
        ])
    }
}
