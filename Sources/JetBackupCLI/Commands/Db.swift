import ArgumentParser
import JetStore

struct Db: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "db", abstract: "Create or list databases.", subcommands: [Create.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a database.")
        @Argument(help: "Name: 1 to 64 letters, digits, '_' or '-'.") var name: String
        @OptionGroup var instance: InstanceOptions
        @OptionGroup var output: JSONOption

        func run() throws {
            try CLI.run(json: output.json) {
                try CLI.withInstance(instance.path) { try $0.createDatabase(name) }
                CLI.out(output.json ? JSONValue.object([("result", .string("ok")), ("database", .string(name))]).serialized()
                                    : "created database \(name)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List databases.")
        @OptionGroup var instance: InstanceOptions
        @OptionGroup var output: JSONOption

        func run() throws {
            try CLI.run(json: output.json) {
                let names = try CLI.withInstance(instance.path, mode: .readOnly) { $0.databaseNames }
                if output.json {
                    CLI.out(JSONValue.object([("databases", .array(names.map { .string($0) }))]).serialized())
                } else {
                    for n in names { CLI.out(n) }
                }
            }
        }
    }
}
