import JetStore

/// The command that helps, added to an error where the command line reports it. The engine
/// and the backup library say what is wrong in their own terms; only this layer knows the
/// commands and flags, so only it names them.
enum Hints {
    static func add(to e: JetError) -> JetError {
        guard let h = hint(for: e) else { return e }
        return JetError(e.code, e.message + h)
    }

    static func hint(for e: JetError) -> String? {
        let m = e.message
        switch e.code {
        case .databaseNotFound where m.hasPrefix("no database '"):
            return "; list them with 'jetbackup db list', create one with 'jetbackup db create NAME'"
        case .invalidBackup where m.contains("circular logging is on"):
            return " ('jetbackup config circular-logging false')"
        case .missingFullBackup:
            return " ('jetbackup backup DIR' into an empty directory, or with --atomic)"
        case .backupDirectoryNotEmpty where m.contains("is not empty"):
            return " (--incremental extends the set in it, --atomic replaces it)"
        case .backupDirectoryNotEmpty where m.contains("set of another instance"):
            return " (--replace-foreign)"
        case .databaseCorrupted where m.contains("check the instance's pages"),
             .readVerifyFailure where m.contains("check the instance's pages"):
            return "; 'jetbackup check' lists every damaged page and log"
        case .invalidParameter where m.contains("fixed when the instance is created"):
            return " ('jetbackup init NEWDIR --…')"
        case .softRecoveryOnBackupDatabase where m.contains("is a backup image"):
            return " ('jetbackup restore DIR --to NEWDIR')"
        case .permissionDenied where m.contains("no key file was given"):
            return " (--key-file PATH, or JETBACKUP_KEY_FILE)"
        default:
            return nil
        }
    }
}
