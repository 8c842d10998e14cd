import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetBackup
import JetStore

extension S3Config.Addressing: ExpressibleByArgument {}

/// Where backups are kept, for every command that takes a backup directory or a repository:
/// a local path, or `s3://BUCKET/PREFIX` (credentials and endpoint from the AWS_* variables),
/// and the key file of an encrypted repository (README "Remote storage and encryption").
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The file holding the passphrase of an encrypted repository (default $JETBACKUP_KEY_FILE).",
                               valueName: "PATH"))
    var keyFile: String?
    @Option(help: ArgumentHelp("S3 addressing: path or virtual (default: path when AWS_ENDPOINT_URL is set, else virtual).",
                               valueName: "STYLE"))
    var s3Addressing: S3Config.Addressing?

    /// The key file's passphrase: `--key-file`, else `$JETBACKUP_KEY_FILE`, else none.
    var passphrase: [UInt8]? {
        get throws {
            guard let p = keyFile ?? CLI.environment("JETBACKUP_KEY_FILE").flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
            return try RepositoryKey.passphrase(fromKeyFile: Paths.absolute(p))
        }
    }

    /// The path and file system of a location as the user typed it.
    func location(_ text: String) throws -> (path: String, fs: any FileSystem) {
        guard S3Location.isS3(text) else { return (Paths.resolved(text), PosixFileSystem()) }
        let loc = try S3Location(parsing: text)
        let env = Served.current?.environment ?? ProcessInfo.processInfo.environment
        let (fs, path) = try S3FileSystem.connect(loc, config: try S3Config.fromEnvironment(env, addressing: s3Addressing))
        return (path, fs)
    }

    /// The repository at `text`, opened with the key file when it is encrypted.
    func openRepository(_ text: String) throws -> Repository {
        let (path, fs) = try location(text)
        return try Repository.open(path, fs: fs, clock: try CLI.clock, requireEncrypted: keyFile != nil) { try passphrase }
    }
}
