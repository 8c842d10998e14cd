import ArgumentParser
import JetBackup
import JetStore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "Prove the backup set in DIR would restore, without writing anything.")
    @Argument(help: "Backup directory.") var dir: String?
    @OptionGroup var repo: RepoSetOptions
    @Option(help: ArgumentHelp("Read at most RATE bytes a second from the set (50MiB).", valueName: "RATE")) var maxRate: RateArgument?
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let (path, repository, fs) = try repo.directory(dir)
            let verifier = SetVerifier(fs: fs, maxBytesPerSecond: maxRate?.bytesPerSecond)
            let r: SetVerifier.Report
            do {
                r = try verifier.verify(path)
            } catch let e as JetError where e.code != .termInProgress {
                // A repository keeps the result with the set: `list` and `status` show it.
                if let repository { Self.record(path, repository, ok: false, message: "\(e.code.name): \(e.message)") }
                throw e
            }
            if let repository { Self.record(path, repository, ok: true, message: nil) }
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

    /// Writes the set's verification record; a repository that cannot be written loses only the record.
    static func record(_ setDir: String, _ repo: Repository, ok: Bool, message: String?) {
        let fs = repo.fs
        let mp = FilePaths.join(setDir, BackupSetLayout.manifest)
        let checksum = (try? fs.readAll(mp)).flatMap { try? BackupManifest.decode($0, path: mp) }?.checksum
        let now = repo.clock.now()
        let rec = VerificationRecord(time: Clock.rfc3339(microseconds: now), timeMicros: now, ok: ok, manifestChecksum: checksum, message: message)
        do { try rec.write(setDir, fs: fs) } catch {
            CLI.err("jetbackup: warning: could not record the verification in \(setDir): \(error)")
        }
    }
}
