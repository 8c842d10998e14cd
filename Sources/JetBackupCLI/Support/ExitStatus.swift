import JetStore

/// The process exit status of each error: the README's "Exit status and errors" table
/// (sysexits.h values). Only the command line has exit codes; the engine and the backup
/// library report errors.
extension JetError.Code {
    var exitCode: Int32 {
        switch self {
        case .invalidParameter, .invalidGrbit: 64
        case .invalidPath, .backupDirectoryNotEmpty, .databaseDuplicate: 73
        case .backupInProgress, .restoreInProgress, .backupNotAllowedYet, .termInProgress, .fileAccessDenied,
             .backupAbortByServer: 75
        case .loggingDisabled, .invalidBackup, .missingFullBackup, .missingFileToBackup, .invalidBackupSequence: 78
        case .readVerifyFailure, .logReadVerifyFailure, .missingLogFile, .givenLogFileHasBadSignature,
             .givenLogFileIsNotContiguous, .softRecoveryOnBackupDatabase, .badLogSignature,
             .databaseDirtyShutdown, .databaseCorrupted, .invalidDatabase, .checkpointCorrupt: 65
        case .diskFull, .diskIO, .instanceUnavailable, .logWriteFail: 74
        case .fileNotFound, .databaseNotFound: 66
        case .recordNotFound: 1
        case .permissionDenied: 77
        }
    }
}
