import JetStore

/// A full backup into an empty directory: every database image (pages verified by the
/// engine), then the log from the replay start through a roll after the pages, then
/// SHA256SUMS and the manifest. The caller records the backup in the instance.
struct FullBackup {
    let run: BackupRun

    /// Builds a complete set in `dir`, which must be empty. With `marker` the run first
    /// writes `.jetbackup-incomplete` there listing every name it may create, manifest first
    /// (so an undo or the next run removes exactly those, the manifest before anything it
    /// names); the marker stays until the caller has recorded the backup. Without it the
    /// caller owns `dir` and removes it whole on failure. Returns the last generation the set holds.
    func write(into dir: String, marker: Bool) throws -> UInt32 {
        let session = run.session
        let fs = run.fs
        let dbs = session.databases
        let start = session.start
        try run.begin(.full, totalBytes: dbs.reduce(Int64(0)) { $0 + $1.size }
            + Int64(Int(session.currentGeneration) - Int(start.generation) + 1) * Int64(session.logFileSize))
        var names = [BackupSetLayout.manifest, BackupSetLayout.sums] + dbs.map(\.fileName)
        if marker {
            // `names` as the marker has it when the undo runs (the closure sees later additions).
            run.undo.register { try? BackupSetLayout.cleanLeftovers(dir, keeping: [], written: names, fs: fs) }
            try BackupSetLayout.writeMarker(dir, names: names, fs: fs)
        }
        var files: [BackupManifest.File] = []
        var manifestDbs: [BackupManifest.Database] = []
        // Each image is finished before the next one starts (its buffers are freed), but the
        // last one's tail — the hash and the writes catching up, the final fsync — runs while
        // the log is rolled and copied.
        var pending: (BackupSession.Database, PendingImage)?
        defer { pending?.1.abandon() }
        func finishPending() throws {
            guard let (db, image) = pending else { return }
            pending = nil
            let r = try image.finish()
            files.append(r.file)
            manifestDbs.append(BackupManifest.Database(name: db.name, file: db.fileName, dbid: db.dbid,
                                                       signature: .init(db.signature), pageSize: db.pageSize, pages: r.pages))
            run.summary.pages += r.pages
            run.summary.bytesRead += r.file.size
            run.summary.bytesStored += r.file.size
            run.events.log(.fileEnd, "copied \(db.fileName)",
                           [("file", .string(db.fileName)), ("pages", .int(Int64(r.pages))), ("bytes", .int(r.file.size))])
        }
        for db in dbs {
            try finishPending()
            try run.checkCancelled()
            run.events.log(.fileStart, "copying \(db.fileName)", [("file", .string(db.fileName))])
            let image = try DatabaseCopier(fs: fs, session: session, database: db)
                .start(to: FilePaths.join(dir, db.fileName), backupIndex: 0) { n in try run.advance(n, file: db.fileName) }
            pending = (db, image)
        }
        run.summary.databases = dbs.count
        // The log, from the checkpoint at the start through a roll after the pages were read:
        // every change in a copied page is in it (pages reach disk only after their log does).
        let last = try session.rollLog()
        let gens = try session.generations(through: last)
        names += gens.map { FileNames.archivedLog($0) + run.logSuffix }
        if marker { try BackupSetLayout.writeMarker(dir, names: names, fs: fs) }
        let logs = try run.copyLogs(gens, into: dir, backupIndex: 0, previousCreation: nil)
        try finishPending()
        files += logs
        let manifest = BackupManifest(
            logSignature: .init(session.logSignature),
            replayFrom: .init(generation: start.generation, offset: start.offset),
            pageSize: session.pageSize, databases: manifestDbs,
            chain: [run.chainEntry(.full, genLow: gens.lowerBound, genHigh: last)],
            files: files)
        try run.commitManifest(manifest, in: dir)
        run.summary.setDirectory = dir
        run.summary.generationsCopied = gens
        return last
    }
}
