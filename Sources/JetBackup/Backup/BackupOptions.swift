#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// The grbits of JetBackupInstance, as options.
public struct BackupOptions: Sendable {
    /// nil: truncate-only (ESE's NULL path).
    public var directory: String?
    /// JET_bitBackupIncremental (0x1).
    public var incremental = false
    /// JET_bitBackupAtomic (0x4).
    public var atomic = false
    /// JET_bitBackupSnapshot (0x10): reserved, refused.
    public var snapshot = false
    /// zstd level for copied logs; nil: uncompressed.
    public var compressionLevel: Int?
    /// Atomic only: replace a set of another instance (another log signature) in DIR, which
    /// is otherwise refused.
    public var replaceForeign = false
    /// Who runs the backup (pid and command), written into the destination's lock so a
    /// refused second run can name it.
    public var owner = "pid \(ProcessInfo.processInfo.processIdentifier)"
    public var fs: any FileSystem = PosixFileSystem()
    /// Polled between chunks: true stops the backup with `JET_errTermInProgress` (signals).
    public var isCancelled: @Sendable () -> Bool = { false }
    /// The clock of the times written into the manifest's chain (a fixed one in tests).
    public var clock: WallClock = .system
    /// Bytes per second written into the set at most; nil: as fast as it goes.
    public var maxBytesPerSecond: Int64?
    /// Seconds to wait for a destination another backup run holds, and for the backup
    /// session of an owner that serves another backup (`LockWait`); nil: fail at once.
    public var wait: Double?
    /// An incremental's check of the set, started before the instance was opened
    /// (`SetPrefetch.start`); used only if the set is unchanged when the run holds its lock.
    public var setPrefetch: SetPrefetch?

    public init(directory: String?) { self.directory = directory }

    public var kind: BackupKind {
        directory == nil ? .truncateOnly : incremental ? .incremental : .full
    }
}

public enum BackupKind: String, Sendable {
    case full
    case incremental
    case truncateOnly = "truncate-only"
}

/// The status callback's events. ESE reports only 0% and 100%; we report real progress.
public enum BackupStatus: Sendable {
    case begin(kind: BackupKind, totalBytes: Int64)
    case progress(done: Int64, total: Int64, file: String)
    case complete(BackupSummary)
    case fail(JetError)
}

public struct BackupSummary: Sendable {
    public var kind: BackupKind
    public var atomic = false
    public var setDirectory: String?
    public var databases = 0
    public var pages = 0
    public var generationsCopied: ClosedRange<UInt32>?
    public var generationsTruncated: ClosedRange<UInt32>?
    /// Bytes written into the set (compressed size for compressed logs).
    public var bytesStored: Int64 = 0
    /// Bytes read from the instance.
    public var bytesRead: Int64 = 0
    public var logBytesRaw: Int64 = 0
    public var logBytesStored: Int64 = 0
    public var seconds = 0.0
    public var compression: String = "none"

    public var compressionRatio: Double { logBytesStored > 0 ? Double(logBytesRaw) / Double(logBytesStored) : 1 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytesRead) / 1_000_000 / seconds : 0 }
}
