import ArgumentParser
import JetBackup
import JetStore

/// `repo init DIR`: makes DIR a repository of many sets; `repo change-key`: a new passphrase.
struct Repo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repo", abstract: "Repositories of many backup sets.",
                                                    subcommands: [RepoInit.self, RepoChangeKey.self])
}

struct RepoInit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Make DIR (new or empty) a repository.",
                                                    discussion: "DIR may be s3://BUCKET/PREFIX. With --encrypt every file stored in it "
                                                        + "is encrypted under a key that the passphrase in --key-file opens.")
    @Argument(help: "The repository directory, or s3://BUCKET/PREFIX.") var dir: String
    @Flag(help: "Encrypt every stored file (AES-256-GCM); the key file's passphrase opens the key.") var encrypt = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            // The key file is read for --encrypt only: $JETBACKUP_KEY_FILE set for other
            // repositories does not get in the way of a plain one.
            var passphrase: [UInt8]?
            if encrypt {
                passphrase = try store.passphrase
                if passphrase == nil {
                    throw JetError(.invalidParameter, "--encrypt needs a key file holding the passphrase: --key-file PATH or JETBACKUP_KEY_FILE")
                }
            } else if store.keyFile != nil {
                throw JetError(.invalidParameter, "--key-file without --encrypt: say --encrypt to make an encrypted repository")
            }
            let (path, fs) = S3Location.isS3(dir) ? try store.location(dir) : (Paths.absolute(dir), PosixFileSystem())
            let r = try Repository.create(path, fs: fs, clock: CLI.clock, passphrase: passphrase)
            let version = r.isEncrypted ? 2 : 1
            if output.json {
                CLI.out(JSONValue.object([("result", .string("ok")), ("repository", .string(r.path)),
                                          ("formatVersion", .int(Int64(version))), ("encrypted", .bool(r.isEncrypted))]).serialized())
            } else {
                CLI.out("repository \(r.path) created (format \(version)\(r.isEncrypted ? ", encrypted" : ""))")
            }
        }
    }
}

struct RepoChangeKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change-key", abstract: "Give an encrypted repository a new passphrase.",
        discussion: "The data key is rewrapped under the passphrase in --new-key-file; no stored file is rewritten. "
            + "--key-file (or JETBACKUP_KEY_FILE) holds the current passphrase.")
    @Argument(help: "The repository directory, or s3://BUCKET/PREFIX.") var dir: String
    @Option(help: ArgumentHelp("The file holding the new passphrase.", valueName: "PATH")) var newKeyFile: String
    @Option(help: ArgumentHelp("Wait up to DURATION for the repository lock.", valueName: "DURATION")) var wait: DurationArgument?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            guard let old = try store.passphrase else {
                throw JetError(.permissionDenied, "the current passphrase is needed: --key-file PATH or JETBACKUP_KEY_FILE")
            }
            let new = try RepositoryKey.passphrase(fromKeyFile: Paths.absolute(newKeyFile))
            let (path, fs) = try store.location(dir)
            try Repository.changeKey(path, fs: fs, old: old, new: new, owner: CLI.owner, wait: wait?.seconds)
            if output.json {
                CLI.out(JSONValue.object([("result", .string("ok")), ("repository", .string(path))]).serialized())
            } else {
                CLI.out("repository \(path): key rewrapped under the new passphrase; no stored file changed")
            }
        }
    }
}
