extension Instance {
    /// Advances the checkpoint to the current end of the log. Called with the engine lock.
    ///
    /// Order, and what holds on disk after each step:
    /// 1. `horizon` = the log position now;
    /// 2. the log is made durable (write-ahead rule for the pages below);
    /// 3. every dirty page is written (through the doublewrite file, in batches that keep a
    ///    split's pages in order: `PageCache.writeBatches`), every database fsynced: all changes logged before `horizon` are in the database files;
    /// 4. a new doublewrite epoch starts: no page can be torn now, and no copy older than
    ///    `horizon`'s pages is left for recovery to put back;
    /// 5. `edb.chk` names `horizon`: recovery starts there. A crash before this step
    ///    recovers from the previous checkpoint, whose log is still all there;
    /// 6. with circular logging, generations older than `horizon` are deleted.
    func checkpointLocked() throws {
        let horizon = log?.position ?? .zero
        try log?.flush()
        try cache.write(cache.dirtyFrames())
        try syncDatabases()
        if let dw = doublewrite, dw.hasCopies { try dw.startEpoch() }
        guard log != nil else { return }
        // A checkpoint already at `horizon` (nothing logged since the last one, as at the close
        // after a backup's checkpoint) is left as it is: the same position written again would
        // cost two fsyncs and tell recovery nothing new.
        if horizon != checkpoint.position {
            let cp = Checkpoint(sequence: checkpoint.sequence + 1, logSignature: parameters.logSignature,
                                position: horizon, time: Clock.microsecondsSinceEpoch())
            try CheckpointFile.write(fs: fs, path: file(FileNames.checkpoint), cp)
            checkpoint = cp
        }
        if parameters.circularLogging {
            _ = try deleteGenerationsLocked(below: horizon.generation)
        }
    }

    /// Forces a checkpoint now (tests, `backup` before truncation).
    public func flushCheckpoint() throws {
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        try checkpointLocked()
    }

    /// Archived generations present, in order.
    func archivedGenerations() throws -> [UInt32] {
        try fs.list(path).compactMap { FileNames.parseArchivedLog($0) }.sorted()
    }

    /// Deletes archived generations below `bound` (and below any generation a running backup
    /// pinned). Returns the range deleted.
    func deleteGenerationsLocked(below bound: UInt32) throws -> ClosedRange<UInt32>? {
        var limit = min(bound, checkpoint.position.generation)
        if let pin = pinnedGeneration { limit = min(limit, pin) }
        let victims = try archivedGenerations().filter { $0 < limit }
        guard let lo = victims.first, let hi = victims.last else { return nil }
        // Oldest first: the first become spares for later rolls, the rest are deleted. A crash
        // between two of them can leave a gap in what remains; those generations are all below
        // the checkpoint, needed by nobody (`Inspection` tells them from a gap that matters),
        // and the next truncation takes them. The directory is not fsynced for it (ESE deletes
        // its logs the same way): a crash may bring some of them back under their names, below
        // the checkpoint where nothing reads them, and the next truncation takes them again;
        // a spare is used only by a roll, whose own fsync of the directory covers its rename.
        try spares().retire(victims)
        return lo...hi
    }

    /// The instance's spare generation files (`LogSpares`), found once.
    func spares() throws -> LogSpares {
        if let logSpares { return logSpares }
        let s = try LogSpares(fs: fs, directory: path,
                              limit: LogSpares.limit(checkpointDepth: parameters.checkpointDepth, logFileSize: parameters.logFileSize))
        logSpares = s
        return s
    }
}
