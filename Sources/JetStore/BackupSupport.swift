/// What the backup module needs from the engine (`package` API). The engine knows nothing
/// of backup sets' files: it pins log generations, rolls the log, names its files, and
/// records backups in the database headers.
extension Instance {
    package struct DatabaseSnapshot: Sendable {
        package let name: String
        package let path: String
        package let pageSize: Int
        package let header: DatabaseHeader
    }

    /// Starts a backup: refuses as SPEC 5 says, then pins the generations from the
    /// checkpoint on so nothing a backup copies is deleted under it. Returns the checkpoint
    /// position: replay of the backup starts there.
    package func beginBackup() throws -> LogPosition {
        engine.lock()
        defer { engine.unlock() }
        switch stateValue {
        case .initializing:
            throw JetError(.backupNotAllowedYet, "the instance is still initializing or recovering; try again when it is open")
        case .terminating, .closed:
            throw JetError(.termInProgress, "the instance is shutting down; no backup can start")
        default: break
        }
        try checkUsable(writing: false)
        guard parameters.loggingEnabled, log != nil else {
            throw JetError(.loggingDisabled, "the instance runs without a log (logging off), so an online backup cannot be taken; enable logging with a new instance")
        }
        guard !backupRunning else {
            throw JetError(.backupInProgress, "another backup of this instance is running; wait for it to finish")
        }
        backupRunning = true
        pinnedGeneration = checkpoint.position.generation
        return checkpoint.position
    }

    package func endBackup() {
        engine.withLock {
            backupRunning = false
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
    package func rollLog() throws -> UInt32 {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        guard let log else { throw JetError(.loggingDisabled, "the instance runs without a log") }
        return try log.roll()
    }

    package var databaseSnapshots: [DatabaseSnapshot] {
        engine.withLock {
            databases.values.sorted { $0.name < $1.name }.map {
                DatabaseSnapshot(name: $0.name, path: $0.path, pageSize: $0.pageSize, header: $0.header)
            }
        }
    }

    package var currentCheckpoint: LogPosition { engine.withLock { checkpoint.position } }

    package var currentGeneration: UInt32 { engine.withLock { log?.currentGeneration ?? 0 } }

    /// Path of an archived generation.
    package func generationPath(_ g: UInt32) -> String { file(FileNames.archivedLog(g)) }

    package func archivedGenerationNumbers() throws -> [UInt32] { try archivedGenerations() }

    /// Records a backup in every database header, as a logged change of page 0 (so it is
    /// as durable and crash-safe as any commit). A full backup sets `fullPrev` and clears
    /// `incPrev`; an incremental sets `incPrev`.
    package func recordBackup(full: Bool, _ info: DatabaseHeader.BackupInfo) throws {
        engine.lock()
        var end: LogPosition?
        do {
            try checkUsable(writing: true)
            for db in databases.values.sorted(by: { $0.dbid < $1.dbid }) {
                var h = db.header
                if full { h.fullPrev = info; h.incPrev = nil } else { h.incPrev = info }
                try rewriteHeaderLogged(db, h)
            }
            cache.endOperation()
            end = try logTransactionLocked()
        } catch {
            poison(error)
            engine.unlock()
            throw error
        }
        engine.unlock()
        if let end, let log { try log.waitDurable(end) }
    }

    /// Clears backup slots and the backup-image mark (a restored instance starts with none).
    package func clearBackupState() throws {
        engine.lock()
        var end: LogPosition?
        do {
            for db in databases.values.sorted(by: { $0.dbid < $1.dbid }) {
                var h = db.header
                h.fullPrev = nil; h.incPrev = nil; h.fullCur = nil; h.isBackupImage = false
                try rewriteHeaderLogged(db, h)
            }
            cache.endOperation()
            end = try logTransactionLocked()
        } catch {
            poison(error)
            engine.unlock()
            throw error
        }
        engine.unlock()
        if let end, let log { try log.waitDurable(end) }
    }

    /// Changes page 0 to carry header `h`, recording only the bytes that differ.
    private func rewriteHeaderLogged(_ db: DatabaseFile, _ h: DatabaseHeader) throws {
        let f = try cache.fetch(db.dbid, PageFormat.headerPage)
        cache.beginChange(f)
        db.header = h
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: db.pageSize, alignment: 64)
        defer { scratch.deallocate() }
        scratch.copyMemory(from: f.bytes)
        h.encode(into: scratch)
        var i = 0
        while i < DatabaseHeader.encodedEnd {
            if scratch[i] != f.buffer[i] {
                var j = i
                while j < DatabaseHeader.encodedEnd && scratch[j] != f.buffer[j] { j += 1 }
                f.copyIn(UnsafeRawBufferPointer(rebasing: scratch[i..<j]), at: i)
                i = j
            } else {
                i += 1
            }
        }
    }

    /// Deletes archived generations below `bound` that crash recovery no longer needs
    /// (never at or above the checkpoint generation). Returns the range deleted.
    package func truncateLogs(below bound: UInt32) throws -> ClosedRange<UInt32>? {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        let saved = pinnedGeneration
        pinnedGeneration = nil
        defer { pinnedGeneration = saved }
        return try deleteGenerationsLocked(below: bound)
    }

    /// Forces a checkpoint so that as many generations as possible become unneeded.
    package func checkpointForTruncation() throws {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        try checkpointLocked()
    }
}
