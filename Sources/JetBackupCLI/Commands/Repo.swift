import ArgumentParser
import JetBackup
import JetStore

/// `repo init DIR`: makes DIR a repository of many sets.
struct Repo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Repositories of many backup sets.", subcommands: [RepoInit.self])
}

struct RepoInit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Make DIR (new or empty) a repository.")
    @Argument(help: "The repository directory.") var dir: String
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let r = try Repository.create(Paths.absolute(dir), clock: CLI.clock)
            if output.json {
                CLI.out(JSONValue.object([("result", .string("ok")), ("repository", .string(r.path)),
                                          ("formatVersion", .int(Int64(Repository.formatVersion)))]).serialized())
            } else {
                CLI.out("repository \(r.path) created (format \(Repository.formatVersion))")
            }
        }
    }
}
