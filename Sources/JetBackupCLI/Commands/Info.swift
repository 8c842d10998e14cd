import ArgumentParser
import JetStore

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Instance and database headers (like esentutl /mh).")
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    static func slot(_ s: DatabaseHeader.BackupInfo?) -> JSONValue {
        guard let s else { return .null }
        return .object([("genLow", .int(Int64(s.genLow))), ("genHigh", .int(Int64(s.genHigh))),
                        ("position", .string(s.position.description)), ("time", .string(CLI.time(s.time)))])
    }

    static func slotText(_ s: DatabaseHeader.BackupInfo?) -> String {
        guard let s else { return "none" }
        return "generations \(s.genLow)-\(s.genHigh) at \(CLI.time(s.time))"
    }

    func run() throws {
        try CLI.run(json: output.json) {
            let path = instance.path
            let (p, cp, dbs, spares) = try CLI.withLockedInstance(path) { p in
                (p, p.loggingEnabled ? try? Inspection.checkpoint(path, fs: PosixFileSystem()) : nil,
                 try Inspection.databases(path, fs: PosixFileSystem()), try Inspection.spareLogs(path, fs: PosixFileSystem()))
            }
            if output.json {
                CLI.out(JSONValue.object([
                    ("instance", .string(path)), ("parameters", ConfigReport.json(p)),
                    ("spareLogs", .object([("count", .int(Int64(spares.count))), ("bytes", .int(spares.bytes))])),
                    ("checkpoint", cp.map { .object([("generation", .int(Int64($0.position.generation))), ("position", .string($0.position.description)), ("time", .string(CLI.time($0.time)))]) } ?? .null),
                    ("databases", .array(dbs.map { d in
                        let h = d.header
                        return .object([
                            ("name", .string(d.name)), ("file", .string(d.file)), ("state", .string(h.state.name)),
                            ("pageSize", .int(Int64(h.pageSize))), ("pages", .int(Int64(h.pageCount))), ("fileSize", .int(d.fileSize)),
                            ("dbid", .int(Int64(h.dbid))), ("signature", .string(h.signature.description)),
                            ("logSignature", .string(h.logSignature.description)), ("dbtime", .int(Int64(h.dbtime))),
                            ("genMin", .int(Int64(h.genMin))), ("genMax", .int(Int64(h.genMax))),
                            ("lastConsistent", .string(h.lastConsistent.description)), ("lastConsistentTime", .string(CLI.time(h.lastConsistentTime))),
                            ("freePages", .int(Int64(h.freeCount))), ("backupImage", .bool(h.isBackupImage)),
                            ("fullPrev", Info.slot(h.fullPrev)), ("incPrev", Info.slot(h.incPrev)), ("fullCur", Info.slot(h.fullCur)),
                            ("headerRepairedFromShadow", .bool(d.headerRepairedFromShadow)),
                        ])
                    })),
                ]).serialized())
                return
            }
            CLI.out("Instance: \(path)")
            CLI.out("  page size:        \(p.pageSize)")
            CLI.out("  log file size:    \(CLI.human(bytes: p.logFileSize))")
            CLI.out("  circular logging: \(p.circularLogging ? "on" : "off")")
            CLI.out("  logging:          \(p.loggingEnabled ? "on" : "off")")
            CLI.out("  log signature:    \(p.logSignature)")
            CLI.out("  spare logs:       \(spares.count) (\(CLI.human(bytes: Int(spares.bytes))), kept for the next log rolls)")
            if let cp { CLI.out("  checkpoint:       generation \(cp.position.generation), position \(cp.position) at \(CLI.time(cp.time))") }
            for d in dbs {
                let h = d.header
                CLI.out("")
                CLI.out("Database: \(d.name) (\(d.file))")
                CLI.out("  state:            \(h.state.name)")
                CLI.out("  page size:        \(h.pageSize)")
                CLI.out("  pages:            \(h.pageCount) (\(h.freeCount) free), \(CLI.human(bytes: Int(d.fileSize))) on disk")
                CLI.out("  signature:        \(h.signature)")
                CLI.out("  log signature:    \(h.logSignature)")
                CLI.out("  dbtime:           \(h.dbtime)")
                CLI.out("  log required:     \(h.genMin)-\(h.genMax)")
                CLI.out("  last consistent:  \(h.lastConsistent) at \(CLI.time(h.lastConsistentTime))")
                CLI.out("  full backup:      \(Info.slotText(h.fullPrev))")
                CLI.out("  incremental:      \(Info.slotText(h.incPrev))")
                if h.isBackupImage { CLI.out("  backup image:     yes (current backup: \(Info.slotText(h.fullCur)))") }
                if d.headerRepairedFromShadow { CLI.out("  WARNING: page 0 is damaged; the header was read from its shadow (page 1)") }
            }
        }
    }
}
