import ArgumentParser
import JetStore

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Verify every page and log checksum (like esentutl /k); exit 65 if anything is bad.")
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let path = instance.path
            let r = try CLI.withLockedInstance(path) { p in
                try Inspection.check(path, fs: PosixFileSystem(), parameters: p)
            }
            if output.json {
                CLI.out(JSONValue.object([
                    ("result", .string(r.ok ? "ok" : "error")), ("pagesChecked", .int(Int64(r.pagesChecked))),
                    ("pagesBad", .int(Int64(r.pagesBad))), ("pagesUninitialized", .int(Int64(r.pagesUninitialized))),
                    ("generationsChecked", .int(Int64(r.generationsChecked))), ("generationsBad", .int(Int64(r.generationsBad))),
                    ("generationsMissing", .int(Int64(r.generationsMissing))),
                    ("problems", .array(r.problems.map { .object([("error", .string($0.code.name)), ("code", .int(Int64($0.code.rawValue))), ("message", .string($0.message))]) })),
                ]).serialized())
            } else {
                let missing = r.generationsMissing > 0 ? ", \(r.generationsMissing) missing" : ""
                CLI.out("checked \(r.pagesChecked) pages (\(r.pagesBad) bad) and \(r.generationsChecked) log generations (\(r.generationsBad) bad\(missing))")
                for p in r.problems { CLI.err("jetbackup: \(p.code.name) (\(p.code.rawValue)): \(p.message)") }
            }
            if let first = r.problems.first {
                CLI.flush()
                throw ExitCode(first.code.exitCode)
            }
        }
    }
}
