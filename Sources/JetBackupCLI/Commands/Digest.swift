import ArgumentParser
import JetBackup
import JetStore

struct Digest: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "digest", abstract: "SHA-256 of the logical content in key order; the first token is the hex digest.")
    @Argument(help: "One database (default: all).") var db: String?
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let (hex, n) = try CLI.withInstance(instance.path, mode: .readOnly) { inst in
                if let db, !inst.databaseNames.contains(db) {
                    throw JetError(.databaseNotFound, "no database '\(db)' in \(instance.path) (see 'jetbackup db list')")
                }
                return try ContentDigest.of(inst, database: db)
            }
            if output.json {
                CLI.out(JSONValue.object([("digest", .string(hex)), ("records", .int(Int64(n))), ("scope", .string(db ?? "*"))]).serialized())
            } else {
                CLI.out("\(hex)  \(db ?? "*")  \(n) records")
            }
        }
    }
}
