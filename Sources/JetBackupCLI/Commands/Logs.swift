import ArgumentParser
import JetStore

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Log generations: file, size, created, checksum, needed for recovery, covered by a backup (like esentutl /ml).")
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
                CLI.out("\(String(g.generation).padding(toLength: 10, withPad: " ", startingAt: 0))  \(g.file.padding(toLength: 16, withPad: " ", startingAt: 0))  \(CLI.human(bytes: Int(g.size)).padding(toLength: 10, withPad: " ", startingAt: 0))  \(CLI.time(g.created).padding(toLength: 24, withPad: " ", startingAt: 0))  \((g.missing ? "MISSING" : g.checksumOK ? "ok" : "BAD").padding(toLength: 8, withPad: " ", startingAt: 0))  \((g.neededForRecovery ? "needed" : "-").padding(toLength: 8, withPad: " ", startingAt: 0))  \(g.coveredByBackup ? "covered" : "-")")
                if let p = g.problem { CLI.out("    \(p)") }
            }
        }
    }
}
