import JetStore

/// What every kind of backup run shares: the engine's session, the options, progress and
/// cancellation, the summary being built, and the undo steps of what it changed.
final class BackupRun {
    let session: any BackupSource
    let options: BackupOptions
    let events: EventLog
    let status: (BackupStatus) throws -> Void
    let undo = BackupUndo()
    var summary: BackupSummary
    var done: Int64 = 0
    var total: Int64 = 0
    /// The run's start on the options' clock.
    let startedAt: UInt64
    let throttle: Throttle?
    /// Of the logs `copyLogs` copied: the latest commit time, and the first generation's
    /// creation time (what the manifest's `lastCommitMicros` is made of).
    var copiedLastCommit: UInt64?
    var copiedFirstCreation: UInt64?

    /// The destination's file system (the engine's files are read through the session).
    var fs: any FileSystem { options.fs }

    init(session: any BackupSource, options: BackupOptions, events: EventLog, status: @escaping (BackupStatus) throws -> Void) {
        self.session = session
        self.options = options
        self.events = events
        self.status = status
        startedAt = options.clock.now()
        throttle = options.maxBytesPerSecond.map { Throttle(bytesPerSecond: $0) }
        summary = BackupSummary(kind: options.kind)
        summary.atomic = options.atomic
        summary.compression = options.compressionLevel.map { "zstd-\($0)" } ?? "none"
    }

    var isCancelled: Bool { options.isCancelled() || session.isInstanceTerminating }

    func checkCancelled() throws {
        if isCancelled {
            throw JetError(.termInProgress, "the backup was interrupted (signal or instance shutdown); "
                + "nothing of it was kept, the headers and logs are unchanged")
        }
    }

    func begin(_ kind: BackupKind, totalBytes: Int64) throws {
        total = totalBytes
        try status(.begin(kind: kind, totalBytes: totalBytes))
    }

    func advance(_ n: Int, file: String) throws {
        done += Int64(n)
        throttle?.consume(Int64(n), isCancelled: { [self] in isCancelled })
        try checkCancelled()
        try status(.progress(done: done, total: max(total, done), file: file))
    }

    /// The suffix of a copied log's name: `.zst` when logs are compressed.
    var logSuffix: String { options.compressionLevel == nil ? "" : ".zst" }

    /// Copies generations `gens` into `dir` as files of backup `backupIndex` of the set.
    func copyLogs(_ gens: ClosedRange<UInt32>, into dir: String, backupIndex: Int, previousCreation: UInt64?) throws -> [BackupManifest.File] {
        let copier = LogCopier(fs: fs, session: session, compressionLevel: options.compressionLevel)
        let copied = try copier.copy(Array(gens), into: dir, backupIndex: backupIndex, previousCreation: previousCreation,
                                     isCancelled: { [self] in isCancelled }) { [self] name, n in try advance(n, file: name) }
        copiedLastCommit = copied.last?.lastCommit
        copiedFirstCreation = copied.first?.header.creationTime
        for c in copied {
            summary.bytesRead += c.rawSize
            summary.bytesStored += c.file.size
            summary.logBytesRaw += c.rawSize
            summary.logBytesStored += c.file.size
        }
        events.log(.logRangeCopied, "log generations \(gens.lowerBound)-\(gens.upperBound) copied",
                   [("low", .int(Int64(gens.lowerBound))), ("high", .int(Int64(gens.upperBound))),
                    ("compression", .string(summary.compression))])
        return copied.map(\.file)
    }

    /// Writes SHA256SUMS then MANIFEST.json (each: temp file, fsync, rename, directory
    /// fsync). The manifest's rename is the moment the set exists.
    func commitManifest(_ m: BackupManifest, in dir: String) throws {
        try fs.writeAtomically(FilePaths.join(dir, BackupSetLayout.sums), m.sha256sums())
        try fs.writeAtomically(FilePaths.join(dir, BackupSetLayout.manifest), try m.encoded())
    }

    /// The chain entry of this run, after `copyLogs`. `previous` is the `lastCommitMicros` of
    /// the entry an incremental follows (nil for a full, or a set written before them).
    func chainEntry(_ type: BackupManifest.BackupType, genLow: UInt32, genHigh: UInt32, previous: UInt64? = nil) -> BackupManifest.Backup {
        let clock = options.clock
        let end = clock.now()
        let start = clock.isSystem ? session.startTime : min(startedAt, end)
        var b = BackupManifest.Backup(type: type, start: Clock.rfc3339(microseconds: start),
                                      end: Clock.rfc3339(microseconds: end), startMicros: start, endMicros: end,
                                      genLow: genLow, genHigh: genHigh, compression: summary.compression)
        b.lastCommitMicros = BackupManifest.Backup.lastCommit(type, own: copiedLastCommit, firstCreation: copiedFirstCreation,
                                                              previous: previous)
        return b
    }
}
