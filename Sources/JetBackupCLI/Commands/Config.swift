import ArgumentParser
import JetBackup
import JetStore

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Show or change a system parameter.")

    @Argument(help: "Parameter name (page-size, log-file-size, circular-logging, logging, create-path-if-not-exist, cache-size, checkpoint-depth, doublewrite-size).")
    var key: String?
    @Argument(help: "New value.")
    var value: String?
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let p: InstanceParameters
            p = try CLI.onInstance(instance.path) {
                if let key, let value {
                    return try CLI.waitingForLock {
                        try Instance.configure(at: instance.path, owner: CLI.owner) { try $0.set(key, value) }
                    }
                }
                return try Instance.readParameters(at: instance.path)
            }
            if let key {
                guard let v = p.value(of: key) else {
                    throw JetError(.invalidParameter, "unknown parameter '\(key)'; known: "
                        + "\(InstanceParameters.keys.map(\.name).joined(separator: ", "))")
                }
                CLI.out(output.json ? JSONValue.object([(key, .string(v))]).serialized() : v)
                return
            }
            if output.json {
                CLI.out(ConfigReport.json(p).serialized())
            } else {
                for k in InstanceParameters.keys {
                    CLI.out("\(Text.padded(k.name, to: 26)) \(p.value(of: k.name) ?? "")\(k.mutable ? "" : "  (fixed)")  [\(k.ese)]")
                }
            }
        }
    }
}

enum ConfigReport {
    static func json(_ p: InstanceParameters) -> JSONValue {
        .object([
            ("page-size", .int(Int64(p.pageSize))), ("log-file-size", .int(Int64(p.logFileSize))),
            ("circular-logging", .bool(p.circularLogging)), ("logging", .bool(p.loggingEnabled)),
            ("create-path-if-not-exist", .bool(p.createPathIfNotExist)), ("cache-size", .int(Int64(p.cacheSize))),
            ("checkpoint-depth", .int(Int64(p.checkpointDepth))), ("doublewrite-size", .int(Int64(p.effectiveDoublewriteSize))),
            ("log-signature", .string(p.logSignature.description)),
        ])
    }
}
