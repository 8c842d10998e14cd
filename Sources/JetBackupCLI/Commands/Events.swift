import ArgumentParser
import JetStore

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "The instance's event log (JSON lines).")
    @Option(parsing: .unconditional, help: "The last N events.") var limit: Int = 50
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func validate() throws { if limit < 0 { throw ValidationError("--limit must be 0 or more") } }

    func run() throws {
        try CLI.run(json: output.json) {
            let path = instance.path
            let lines = try CLI.withLockedInstance(path) { _ in
                try EventLog(fs: PosixFileSystem(), path: FilePaths.join(path, FileNames.events)).lines(limit: limit)
            }
            if output.json {
                CLI.out("{\"events\":[" + lines.joined(separator: ",") + "]}")
            } else {
                for l in lines { CLI.out(l) }
            }
        }
    }
}
