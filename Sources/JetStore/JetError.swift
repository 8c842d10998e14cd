/// The errors of the engine and of the tools above it, with ESE's names and numbers
/// (the README's error table). `message` says what, where (file, page, generation) and what to do.
public struct JetError: Error, CustomStringConvertible, Sendable, Equatable {
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name) (\(code.rawValue)): \(message)" }

    /// Stable ESE error numbers. Each comment line says when we return it.
    public enum Code: Int32, Sendable, CaseIterable {
        /// A torn or corrupt B+tree structure, a record of the wrong shape.
        case databaseCorrupted = -1206
        /// `get` / `delete` of a key that is not there.
        case recordNotFound = -1601
        /// A named database is not attached to the instance.
        case databaseNotFound = -1203
        /// `db create` of a name that exists.
        case databaseDuplicate = -1201
        /// A file that is not a database of ours.
        case invalidDatabase = -1028
        /// A directory that is not an instance, a file that should be there is not.
        case fileNotFound = -1811
        /// The instance is locked by another process (message names pid and command).
        case fileAccessDenied = -1032
        /// The user may not read or write a file or directory (EACCES, EPERM): another user's instance.
        case permissionDenied = -1809
        /// A bad argument value.
        case invalidParameter = -1003
        /// `--snapshot`; `--atomic` with `--incremental`.
        case invalidGrbit = -900
        /// Backup directory missing and create-path off.
        case invalidPath = -1023
        /// Full, non-atomic backup into a directory that is not empty.
        case backupDirectoryNotEmpty = -504
        /// Another backup of the instance is running.
        case backupInProgress = -505
        /// A restore into the instance is running.
        case restoreInProgress = -506
        /// Instance still initializing or recovering.
        case backupNotAllowedYet = -523
        /// Instance shutting down; SIGINT/SIGTERM during a backup.
        case termInProgress = -1000
        /// The instance runs without a log.
        case loggingDisabled = -516
        /// Incremental backup while circular logging is on.
        case invalidBackup = -526
        /// Incremental with no full backup before it.
        case missingFullBackup = -560
        /// A generation the incremental needs is gone.
        case missingFileToBackup = -569
        /// The directory does not hold the set the incremental extends.
        case invalidBackupSequence = -521
        /// A database page fails its checksum or page-number check.
        case readVerifyFailure = -1018
        /// A log generation or record fails its checksum.
        case logReadVerifyFailure = -612
        /// A log generation is missing.
        case missingLogFile = -528
        /// Restore: a log of another instance.
        case givenLogFileHasBadSignature = -555
        /// Restore: generations do not link.
        case givenLogFileIsNotContiguous = -556
        /// Recovery: a log whose signature is not the instance's.
        case badLogSignature = -530
        /// Opening a backup set as an instance.
        case softRecoveryOnBackupDatabase = -544
        /// A database left dirty by a crash of an instance that runs without a log.
        case databaseDirtyShutdown = -550
        /// Writing the log failed: the instance stops taking commits.
        case logWriteFail = -510
        /// The checkpoint file is unreadable in both copies.
        case checkpointCorrupt = -533
        /// No space left on the device.
        case diskFull = -1808
        /// Any other I/O error.
        case diskIO = -1022
        /// The instance hit a fatal error earlier and takes no more work; the owner of an
        /// instance refused a client's protocol version.
        case instanceUnavailable = -1090
        /// The process that owns the instance stopped (killed, shut down) while serving a
        /// backup or command to another process.
        case backupAbortByServer = -801

        public var name: String {
            switch self {
            case .databaseCorrupted: "JET_errDatabaseCorrupted"
            case .recordNotFound: "JET_errRecordNotFound"
            case .databaseNotFound: "JET_errDatabaseNotFound"
            case .databaseDuplicate: "JET_errDatabaseDuplicate"
            case .invalidDatabase: "JET_errInvalidDatabase"
            case .fileNotFound: "JET_errFileNotFound"
            case .fileAccessDenied: "JET_errFileAccessDenied"
            case .permissionDenied: "JET_errPermissionDenied"
            case .invalidParameter: "JET_errInvalidParameter"
            case .invalidGrbit: "JET_errInvalidGrbit"
            case .invalidPath: "JET_errInvalidPath"
            case .backupDirectoryNotEmpty: "JET_errBackupDirectoryNotEmpty"
            case .backupInProgress: "JET_errBackupInProgress"
            case .restoreInProgress: "JET_errRestoreInProgress"
            case .backupNotAllowedYet: "JET_errBackupNotAllowedYet"
            case .termInProgress: "JET_errTermInProgress"
            case .loggingDisabled: "JET_errLoggingDisabled"
            case .invalidBackup: "JET_errInvalidBackup"
            case .missingFullBackup: "JET_errMissingFullBackup"
            case .missingFileToBackup: "JET_errMissingFileToBackup"
            case .invalidBackupSequence: "JET_errInvalidBackupSequence"
            case .readVerifyFailure: "JET_errReadVerifyFailure"
            case .logReadVerifyFailure: "JET_errLogReadVerifyFailure"
            case .missingLogFile: "JET_errMissingLogFile"
            case .givenLogFileHasBadSignature: "JET_errGivenLogFileHasBadSignature"
            case .givenLogFileIsNotContiguous: "JET_errGivenLogFileIsNotContiguous"
            case .badLogSignature: "JET_errBadLogSignature"
            case .softRecoveryOnBackupDatabase: "JET_errSoftRecoveryOnBackupDatabase"
            case .databaseDirtyShutdown: "JET_errDatabaseDirtyShutdown"
            case .logWriteFail: "JET_errLogWriteFail"
            case .checkpointCorrupt: "JET_errCheckpointCorrupt"
            case .diskFull: "JET_errDiskFull"
            case .diskIO: "JET_errDiskIO"
            case .instanceUnavailable: "JET_errInstanceUnavailable"
            case .backupAbortByServer: "JET_errBackupAbortByServer"
            }
        }
    }
}
