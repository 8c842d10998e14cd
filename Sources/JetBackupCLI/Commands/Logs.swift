import ArgumentParser
import JetStore

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Log generations: file, size, created, checksum, needed for recovery, "
        + "covered by a backup (like esentutl /ml).")
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let path = instance.path
            let gens = try CLI.withLockedInstance(path) { p in
                try Inspection.generations(path, fs: PosixFileSystem(), parameters: p)
            }
            if output.json {
                CLI.out(JSONValue.object([("generations", .array(gens.map { g in
                    .object([("generation", .int(Int64(g.generation))), ("file", .string(g.file)), ("size", .int(g.size)),
                             ("created", .string(CLI.time(g.created))), ("checksumOk", .bool(g.checksumOK)), ("missing", .bool(g.missing)),
                             ("problem", g.problem.map { .string($0) } ?? .null),
                             ("neededForRecovery", .bool(g.neededForRecovery)), ("coveredByBackup", .bool(g.coveredByBackup))])
                }))]).serialized())
                return
            }
            CLI.out("generation  file              size        created                   checksum  recovery  backup")
            for g in gens {
                func col(_ text: String, _ width: Int) -> String { Text.padded(text, to: width) }
                let state = g.missing ? "MISSING" : g.checksumOK ? "ok" : "BAD"
                CLI.out([col(String(g.generation), 10), col(g.file, 16), col(CLI.human(bytes: Int(g.size)), 10),
                         col(CLI.time(g.created), 24), col(state, 8), col(g.neededForRecovery ? "needed" : "-", 8),
                         g.coveredByBackup ? "covered" : "-"].joined(separator: "  "))
                if let p = g.problem { CLI.out("    \(p)") }
            }
        }
    }
}
