import ArgumentParser
import JetBackup
import JetStore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every set of the repository DIR: chain, times, generations, sizes, state.")
    @Argument(help: "The repository directory, or s3://BUCKET/PREFIX.") var dir: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let repo = try store.openRepository(dir)
            let scan = try repo.scan()
            if output.json {
                CLI.out(JSONValue.object([
                    ("repository", .string(repo.path)),
                    ("sets", .array(scan.sets.map(Self.json))),
                    ("skipped", .array(scan.skipped.map { .object([("name", .string($0.name)), ("reason", .string($0.reason))]) })),
                ]).serialized())
                return
            }
            CLI.out("repository \(repo.path): \(scan.sets.count) sets, \(scan.completeCount) complete")
            for s in scan.sets {
                guard let m = s.manifest else {
                    CLI.out("\(s.label)  \(s.state.rawValue)  \(s.problem ?? "")")
                    continue
                }
                let (stored, _) = Show.sizes(m.files)
                let chain = m.chain.count > 1 ? "full + \(m.chain.count - 1) incremental" : "full"
                let verified = s.verification.map { "\($0.ok ? "verified" : "verify FAILED") \($0.time)" } ?? "never verified"
                CLI.out("\(s.label)  \(s.state.rawValue)  \(chain)  \(m.chain[0].start) .. \(m.chain.last?.end ?? "")  "
                    + "generations \(m.chain[0].genLow)-\(m.lastGeneration)  \(CLI.human(bytes: Int(stored)))  "
                    + "\(Set(m.chain.map(\.compression)).sorted().joined(separator: ","))  \(verified)"
                    + (s.problem.map { "  (\($0))" } ?? ""))
            }
            for k in scan.skipped { CLI.err("jetbackup: skipped \(k.name): \(k.reason)") }
        }
    }

    static func json(_ s: RepositorySet) -> JSONValue {
        var f: [(String, JSONValue)] = [("label", .string(s.label.description)), ("path", .string(s.path)), ("state", .string(s.state.rawValue)),
                                        ("problem", s.problem.map { .string($0) } ?? .null)]
        if let m = s.manifest {
            let (stored, raw) = Show.sizes(m.files)
            f += [
                ("start", .string(m.chain[0].start)), ("end", .string(m.chain.last?.end ?? "")),
                ("genLow", .int(Int64(m.chain[0].genLow))), ("genHigh", .int(Int64(m.lastGeneration))),
                ("bytes", .int(stored)), ("rawBytes", .int(raw)),
            ] + Show.restorableTimes(m) + [
                ("chain", .array(m.chain.map { b in .object([
                    ("type", .string(b.type.rawValue)), ("start", .string(b.start)), ("end", .string(b.end)),
                    ("genLow", .int(Int64(b.genLow))), ("genHigh", .int(Int64(b.genHigh))), ("compression", .string(b.compression)),
                    ("lastCommitTime", b.lastCommitMicros.map { .string(BackupManifest.time($0)) } ?? .null),
                ]) })),
            ]
        }
        f.append(("lastVerified", s.verification.map { .object([("time", .string($0.time)), ("ok", .bool($0.ok))]) } ?? .null))
        return .object(f)
    }
}
