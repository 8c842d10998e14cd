import ArgumentParser
import JetStore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create an instance in PATH (or -i, or the current directory).")

    @Argument(help: "Directory of the new instance (created if missing, else must be empty).")
    var path: String?
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption
    // `.unconditional`: `--log-file-size -1` is a value to refuse, not a missing one.
    @Option(parsing: .unconditional, help: "Database page size: 4KiB, 8KiB, 16KiB or 32KiB [JET_paramDatabasePageSize].")
    var pageSize: Size?
    @Option(parsing: .unconditional, help: "Size of each log generation, default 1MiB [JET_paramLogFileSize].")
    var logFileSize: Size?
    @Flag(help: "Delete log generations older than the checkpoint [JET_paramCircularLog].")
    var circularLogging = false
    @Flag(help: "Run without a write-ahead log [JET_paramRecovery off]: no crash recovery, no backups.")
    var noLogging = false
    @Flag(help: "Backups create a missing destination directory [JET_paramCreatePathIfNotExist].")
    var createPathIfNotExist = false

    func run() throws {
        try CLI.run(json: output.json) {
            var p = InstanceParameters()
            if let s = pageSize { p.pageSize = s.bytes }
            if let s = logFileSize { p.logFileSize = s.bytes }
            p.circularLogging = circularLogging
            p.loggingEnabled = !noLogging
            p.createPathIfNotExist = createPathIfNotExist
            let dir = path.map(Paths.absolute) ?? instance.path
            try Instance.create(at: dir, parameters: p)
            if output.json {
                CLI.out(JSONValue.object([("result", .string("ok")), ("instance", .string(dir)),
                                          ("parameters", ConfigReport.json(try Instance.readParameters(at: dir)))]).serialized())
            } else {
                CLI.out("created instance \(dir) (page size \(p.pageSize), "
                    + "log file size \(CLI.human(bytes: p.logFileSize))\(p.circularLogging ? ", circular logging" : "")\(p.loggingEnabled ? "" : ", logging off"))")
            }
        }
    }
}
