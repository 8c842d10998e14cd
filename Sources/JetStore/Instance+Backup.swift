/// The engine's side of backups: starting a session (`BackupSession` does the reading),
/// pinning and truncating log generations, and recording backups in the database headers.
/// The engine knows nothing of where or how a backup is stored.
extension Instance {
    /// Starts a backup session (ESE's `JetBeginExternalBackupInstance`): refuses what cannot
    /// be backed up, takes a checkpoint for a full backup (every dirty page flushed, so the
    /// set needs the log only from now on), and pins the log from the replay start on so
    /// nothing the session hands out is deleted under it.
    public func beginBackup(_ kind: BackupSession.Kind) throws -> BackupSession {
        if kind == .incremental && parameters.circularLogging {
            throw JetError(.invalidBackup, "incremental backups need every log generation, but circular logging is on; "
                + "turn circular logging off and take a full backup")
        }
        engine.lock()
        defer { engine.unlock() }
        try checkBackupAllowedLocked()
        var previousEnd: UInt32?
        if kind == .incremental {
            let dbs = databases.values.sorted { $0.name < $1.name }
            guard !dbs.isEmpty else {
                throw JetError(.missingFullBackup, "the instance has no databases, so there is no full backup to extend; "
                    + "create a database and take a full backup first")
            }
            let without = dbs.filter { $0.header.fullPrev == nil }.map(\.name)
            if without.count == dbs.count {
                throw JetError(.missingFullBackup, "there is no full backup of this instance to extend (the database headers record none); "
                    + "take a full backup first")
            }
            if !without.isEmpty {
                let many = without.count > 1
                throw JetError(.missingFullBackup, "database\(many ? "s" : "") \(without.joined(separator: ", ")) \(many ? "have" : "has") no full backup (created or attached after the last full backup), so no incremental can cover \(many ? "them" : "it")"
                    + "; take a full backup, which then holds every database")
            }
            previousEnd = dbs.map { max($0.header.fullPrev!.genHigh, $0.header.incPrev?.genHigh ?? 0) }.max()
        } else {
            try checkpointLocked()
            // From here until the session ends, splits log the cells they move: the copy
            // reads each page once, at its own time (`BTree.splitsCarryCells`).
            databaseCopyRunning = true
        }
        backupRunning = true
        pinnedGeneration = checkpoint.position.generation
        return BackupSession(instance: self, kind: kind, start: checkpoint.position, previousEnd: previousEnd,
                             databases: Array(databases.values))
    }

    /// Deletes the log generations crash recovery no longer needs, after a checkpoint (ESE's
    /// truncate-only backup). nil when nothing could be deleted, or with circular logging
    /// (the engine deletes old generations itself).
    public func truncateLogs() throws -> ClosedRange<UInt32>? {
        engine.lock()
        defer { engine.unlock() }
        try checkBackupAllowedLocked()
        guard !parameters.circularLogging else {
            events.log(.nothingToTruncate, "circular logging is on: the engine deletes old generations itself")
            return nil
        }
        try checkpointLocked()
        let r = try deleteGenerationsLocked(below: checkpoint.position.generation)
        logTruncation(r)
        return r
    }

    /// Refusals shared by every kind of backup. Called with the engine lock held.
    private func checkBackupAllowedLocked() throws {
        switch stateValue {
        case .initializing:
            throw JetError(.backupNotAllowedYet, "the instance is still initializing or recovering; try again when it is open")
        case .terminating, .closed:
            throw JetError(.termInProgress, "the instance is shutting down; no backup can start")
        default: break
        }
        try checkUsable(writing: false)
        guard parameters.loggingEnabled, log != nil else {
            throw JetError(.loggingDisabled, "the instance runs without a log (logging off), so an online backup cannot be taken; "
                + "enable logging with a new instance")
        }
        guard !backupRunning else {
            throw JetError(.backupInProgress, "another backup of this instance is running; wait for it to finish")
        }
    }

    func logTruncation(_ r: ClosedRange<UInt32>?) {
        if let r {
            events.log(.logsTruncated, "log generations \(r.lowerBound)-\(r.upperBound) truncated",
                       [("low", .int(Int64(r.lowerBound))), ("high", .int(Int64(r.upperBound)))])
        } else {
            events.log(.nothingToTruncate, "no log generation could be truncated")
        }
    }

    package func endBackup() {
        engine.withLock {
            backupRunning = false
            databaseCopyRunning = false
            pinnedGeneration = nil
        }
    }

    /// True once a shutdown started: a running backup stops with `JET_errTermInProgress`.
    package var isTerminating: Bool {
        engine.withLock { stateValue == .terminating || stateValue == .closed }
    }

    /// Starts shutting down: new work is refused, a running backup aborts.
    package func beginTermination() {
        engine.withLock { if stateValue == .running { stateValue = .terminating } }
    }

    /// Finishes the current generation (it becomes `edbXXXXXXXX.log`); returns its number.
    func rollLog() throws -> UInt32 {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        guard let log else { throw JetError(.loggingDisabled, "the instance runs without a log") }
        return try log.roll()
    }

    package var currentGeneration: UInt32 { engine.withLock { log?.currentGeneration ?? 0 } }

    /// Bytes of log records this instance appended since it opened (what `load` reports
    /// against the bytes it committed).
    package var logBytesAppended: Int64 { engine.withLock { log?.bytesAppended ?? 0 } }

    /// Path of an archived generation.
    func generationPath(_ g: UInt32) -> String { file(FileNames.archivedLog(g)) }

    func archivedGenerationNumbers() throws -> [UInt32] { try archivedGenerations() }

    /// Records a backup in every database header, as a logged change of page 0 (so it is
    /// as durable and crash-safe as any commit). A full backup sets `fullPrev` and clears
    /// `incPrev`; an incremental sets `incPrev`.
    package func recordBackup(full: Bool, _ info: DatabaseHeader.BackupInfo) throws {
        try loggedTransaction {
            for db in databases.values.sorted(by: { $0.dbid < $1.dbid }) {
                var h = db.header
                if full { h.fullPrev = info; h.incPrev = nil } else { h.incPrev = info }
                try rewriteHeaderLogged(db, h)
            }
            cache.endOperation()
        }
    }

    /// Clears backup slots and the backup-image mark (a restored instance starts with none).
    package func clearBackupState() throws {
        try loggedTransaction {
            for db in databases.values.sorted(by: { $0.dbid < $1.dbid }) {
                var h = db.header
                h.fullPrev = nil; h.incPrev = nil; h.fullCur = nil; h.isBackupImage = false
                try rewriteHeaderLogged(db, h)
            }
            cache.endOperation()
        }
    }

    /// Changes page 0 to carry header `h` (a logged change of its header fields).
    private func rewriteHeaderLogged(_ db: DatabaseFile, _ h: DatabaseHeader) throws {
        let f = try cache.fetch(db.dbid, PageFormat.headerPage)
        cache.beginChange(f)
        db.header = h
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: db.pageSize, alignment: 64)
        defer { scratch.deallocate() }
        scratch.copyMemory(from: f.bytes)
        h.encode(into: scratch)
        try f.log(.header(bytes: [UInt8](scratch[PageFormat.headerSize..<DatabaseHeader.encodedEnd])), into: cache.redo)
    }

    /// After a backup through generation `bound - 1` is recorded: a checkpoint, then the
    /// archived generations below `bound` that crash recovery no longer needs are deleted
    /// (never at or above the checkpoint generation). Returns the range deleted.
    func truncateBackedUpLogs(below bound: UInt32) throws -> ClosedRange<UInt32>? {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        guard !parameters.circularLogging else {
            events.log(.nothingToTruncate, "circular logging is on: nothing to truncate")
            return nil
        }
        try checkpointLocked()
        // This session's own pin does not protect what it has just backed up.
        let saved = pinnedGeneration
        pinnedGeneration = nil
        defer { pinnedGeneration = saved }
        let r = try deleteGenerationsLocked(below: bound)
        logTruncation(r)
        return r
    }
}
