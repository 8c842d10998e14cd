import JetStore

/// `JetBackupInstance`: full, incremental, atomic and truncate-only backups of an open
/// instance, online (other threads keep committing). It is the engine's backup session
/// (which reads and verifies every page and log record) plus a set writer.
///
/// On any failure (error, cancellation, a throwing status callback) the destination is left
/// as it was, the database headers are unchanged and no log is truncated: the headers are
/// updated and logs truncated only after the set is complete and durable, and each step
/// that changed the destination is undone in reverse order.
public enum JetBackupInstance {
    public static func run(_ instance: Instance, _ options: BackupOptions,
                           status: @escaping (BackupStatus) throws -> Void = { _ in }) throws -> BackupSummary {
        try validate(options)
        guard options.directory != nil else { return try truncateOnly(instance, options, status: status) }
        return try run(instancePath: instance.path, createPath: instance.parameters.createPathIfNotExist, options, status: status) {
            try instance.beginBackup($0)
        }
    }

    /// A backup of an instance another process owns, through its control socket: the owner
    /// runs the engine's session, this process writes the set (README "Backups of a running
    /// instance"). A truncate-only backup writes no set: the owner runs it as a command.
    public static func run(through owner: ControlClient, _ options: BackupOptions,
                           status: @escaping (BackupStatus) throws -> Void = { _ in }) throws -> BackupSummary {
        try validate(options)
        guard options.directory != nil else {
            throw JetError(.invalidParameter, "a truncate-only backup runs in the process that owns the instance, not through it")
        }
        let params = try Instance.readParameters(at: owner.instance)
        return try run(instancePath: owner.instance, createPath: params.createPathIfNotExist, options, status: status) {
            try RemoteBackupSession.begin($0, client: owner)
        }
    }

    /// The set writer over any session: the engine's own, or one served by the owner.
    static func run(instancePath: String, createPath: Bool, _ options: BackupOptions, status: @escaping (BackupStatus) throws -> Void,
                    begin: (BackupSession.Kind) throws -> any BackupSource) throws -> BackupSummary {
        guard let dir = options.directory else { throw JetError(.invalidParameter, "no backup directory") }
        try prepareDirectory(dir, instancePath: instancePath, createPath: createPath, options: options)
        // Claimed before anything in it is looked at: see DestinationLock.
        let claim = try LockWait.retrying(for: options.wait, isCancelled: options.isCancelled) {
            try DestinationLock.acquire(dir, owner: "\(options.owner), instance \(instancePath)", fs: options.fs)
        }
        defer { claim.release() }
        // Refused with nothing begun while the instance's owner serves another backup.
        let session = try LockWait.retrying(for: options.wait, isCancelled: options.isCancelled) { try begin(options.incremental ? .incremental : .full) }
        defer { session.abort() }
        let run = BackupRun(session: session, options: options, events: session.events, status: status)
        let t0 = Clock.monotonicSeconds()
        if options.incremental {
            run.events.log(.incrementalBackupStart, "incremental backup started", [("directory", .string(dir))])
        } else {
            run.events.log(.fullBackupStart, "full backup started", [("directory", .string(dir)), ("atomic", .bool(options.atomic))])
        }
        do {
            try run.checkCancelled()
            let setDir: String
            let copied: ClosedRange<UInt32>
            var atomic: AtomicBackup?
            if options.incremental {
                (setDir, copied) = try IncrementalBackup(run: run, dir: dir).write()
            } else if options.atomic {
                let a = AtomicBackup(run: run, dir: dir)
                let last: UInt32
                (setDir, last) = try a.write()
                copied = session.start.generation...last
                atomic = a
            } else {
                try prepareEmpty(dir, fs: options.fs)
                _ = try FullBackup(run: run).write(into: dir, marker: true)
                setDir = dir
                copied = run.summary.generationsCopied!
            }
            // The set is complete and durable: record it, then truncate.
            try run.checkCancelled()
            if options.incremental {
                // From here an extended set stands whatever recording does. A record that
                // fails may still reach the disk (its log write landed, the fsync reported an
                // error) and be replayed at the next open: a set rolled back under it would no
                // longer hold what the instance says it backed up. A set that goes further than
                // the headers is what a run killed here leaves; the next incremental continues
                // from its end.
                run.undo.discard()
                do {
                    run.summary.generationsTruncated = try session.complete(generations: copied)
                } catch let e as JetError {
                    try? BackupSetLayout.removeMarker(setDir, fs: options.fs)
                    throw JetError(e.code, e.message + "; the set in \(setDir) keeps this backup's generations "
                        + "\(copied.lowerBound)-\(copied.upperBound), and the next incremental into it continues from there")
                }
            } else {
                run.summary.generationsTruncated = try session.complete(generations: copied)
            }
            run.undo.discard()
            // The backup stands; a marker or a previous atomic set that cannot be removed
            // now is harmless (a set with a manifest wins) and the next run removes it.
            try? BackupSetLayout.removeMarker(setDir, fs: options.fs)
            atomic?.finish()
            run.summary.seconds = Clock.monotonicSeconds() - t0
            try status(.complete(run.summary))
            run.events.log(.backupSuccess, "\(options.kind.rawValue) backup finished", [
                ("seconds", .double(run.summary.seconds)), ("bytes", .int(run.summary.bytesStored)),
                ("generations", .string("\(copied.lowerBound)-\(copied.upperBound)")),
            ])
            return run.summary
        } catch {
            let e = (error as? JetError) ?? JetError(.diskIO, "\(error)")
            run.undo.run()
            session.abort()
            if e.code == .termInProgress {
                run.events.log(.backupAborted, "backup aborted: \(e.message)", [("error", .string(e.code.name))], level: .warning)
            } else {
                run.events.log(.backupFailure, "backup failed: \(e.message)",
                               [("error", .string(e.code.name)), ("code", .int(Int64(e.code.rawValue)))], level: .error)
            }
            try? status(.fail(e))
            throw e
        }
    }

    /// Refusals that need nothing from the instance.
    static func validate(_ options: BackupOptions) throws {
        if options.snapshot {
            throw JetError(.invalidGrbit, "snapshot backups (JET_bitBackupSnapshot) are reserved and not supported; "
                + "take a full or incremental backup")
        }
        if options.atomic && options.incremental {
            throw JetError(.invalidGrbit, "an atomic backup cannot be incremental (JET_bitBackupAtomic with JET_bitBackupIncremental); "
                + "an incremental backup is already all-or-nothing")
        }
        if options.atomic && options.directory == nil {
            throw JetError(.invalidGrbit, "an atomic backup (JET_bitBackupAtomic) needs a backup directory")
        }
        if options.atomic && options.fs.objectStore != nil {
            throw JetError(.invalidGrbit, "an atomic backup (JET_bitBackupAtomic) swaps the new set in by renaming a directory, and object "
                + "storage cannot rename: back up into an empty prefix (the set exists once its manifest is written) or into a repository")
        }
        if let l = options.compressionLevel, !Zstd.levels.contains(l) {
            throw JetError(.invalidParameter, "compression level \(l) is out of range; use 1 to 19")
        }
    }

    /// ESE's truncate-only backup (no directory): logs recovery no longer needs are deleted.
    static func truncateOnly(_ instance: Instance, _ options: BackupOptions,
                             status: @escaping (BackupStatus) throws -> Void) throws -> BackupSummary {
        let t0 = Clock.monotonicSeconds()
        var summary = BackupSummary(kind: .truncateOnly)
        instance.events.log(.fullBackupStart, "log truncation started (no backup directory)")
        do {
            try status(.begin(kind: .truncateOnly, totalBytes: 0))
            summary.generationsTruncated = try instance.truncateLogs()
            summary.seconds = Clock.monotonicSeconds() - t0
            try status(.complete(summary))
            instance.events.log(.backupSuccess, "truncate-only backup finished", [("seconds", .double(summary.seconds))])
            return summary
        } catch {
            let e = (error as? JetError) ?? JetError(.diskIO, "\(error)")
            instance.events.log(.backupFailure, "log truncation failed: \(e.message)",
                                [("error", .string(e.code.name)), ("code", .int(Int64(e.code.rawValue)))], level: .error)
            try? status(.fail(e))
            throw e
        }
    }

    /// The destination is outside the instance, exists (created when the instance allows it
    /// and the backup is full) and can be written.
    static func prepareDirectory(_ dir: String, instancePath: String, createPath create: Bool, options: BackupOptions) throws {
        let fs = options.fs
        try checkOutsideInstance(dir, instancePath: instancePath, fs: fs)
        if !fs.isDirectory(dir) || fs.isSymlink(dir) {
            if fs.exists(dir) || fs.isSymlink(dir) {
                throw JetError(.invalidPath, "backup directory \(dir) is not a directory")
            }
            guard create, !options.incremental else {
                throw JetError(.invalidPath, "backup directory \(dir) does not exist; create it first (or set create-path-if-not-exist)")
            }
            try createPath(dir, fs: fs)
        }
        guard fs.isWritableDirectory(dir) else {
            throw JetError(.invalidPath, "backup directory \(dir) is not writable (permission denied, or a read-only file system); "
                + "nothing was written: use a directory this user can write")
        }
    }

    static func createPath(_ dir: String, fs: any FileSystem) throws {
        var missing: [String] = []
        var p = dir
        while !fs.exists(p) && p != "/" && p != "." { missing.append(p); p = FilePaths.directory(of: p) }
        guard fs.isWritableDirectory(p) else {
            throw JetError(.invalidPath, "backup directory \(dir) does not exist and cannot be created: "
                + "\(p) is not writable (permission denied, or a read-only file system) or not a directory")
        }
        for d in missing.reversed() {
            do {
                try fs.createDirectory(d)
            } catch where fs.isDirectory(d) && !fs.isSymlink(d) {
                // Another run created it at the same moment: it is there, which is all we need.
            }
            try fs.syncDirectory(FilePaths.directory(of: d))
        }
    }

    /// A backup inside the instance it protects (or an instance inside its backup directory)
    /// is refused: deleting or restoring one would take the other with it, and the instance
    /// directory itself is never empty. Compared after symbolic links are resolved.
    static func checkOutsideInstance(_ dir: String, instancePath: String, fs: any FileSystem) throws {
        let d = fs.canonicalPath(dir), i = fs.canonicalPath(instancePath)
        let resolved = d == FilePaths.normalized(dir) ? "" : " (it resolves to \(d))"
        if FilePaths.isSameOrBelow(d, i) {
            throw JetError(.invalidPath, "backup directory \(dir)\(resolved) is \(d == i ? "the instance directory" : "inside the instance directory \(instancePath)")"
                + "; a backup must live outside the instance it protects: choose a directory elsewhere")
        }
        if FilePaths.isSameOrBelow(i, d) {
            throw JetError(.invalidPath, "backup directory \(dir)\(resolved) holds the instance \(instancePath); "
                + "a backup must live outside the instance it protects: choose a directory that does not contain it")
        }
    }

    /// DIR must be empty but for the leftovers of a killed run, which are removed (and the
    /// run's own lock file).
    static func prepareEmpty(_ dir: String, fs: any FileSystem) throws {
        if BackupSetLayout.locate(dir, fs: fs) == nil {
            try BackupSetLayout.cleanLeftovers(dir, keeping: [], fs: fs)
        }
        let entries = try fs.list(dir).filter { $0 != BackupSetLayout.lock }
        guard entries.isEmpty else {
            throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) is not empty (\(entries.prefix(3).joined(separator: ", "))\(entries.count > 3 ? ", …" : "")); use an empty directory, extend the set in it with an incremental backup, or replace it with an atomic one")
        }
    }
}
