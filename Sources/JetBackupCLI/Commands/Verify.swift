import ArgumentParser
import JetBackup
import JetStore

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
                CLI.out("verified \(r.setDirectory): "
                    + "\(r.files) files, \(r.databases) databases (\(r.pages) pages), \(r.generations) log generations (\(r.records) records), "
                        + "\(CLI.human(bytes: Int(r.bytes))): the set restores")
            }
        }
    }
}
