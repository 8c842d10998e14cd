#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Hard restore of a backup set into a new instance (ESE's JetRestoreInstance, esentutl's
/// hard recovery): the same pass over the set as verify, writing what it checked — the
/// database images, then each log generation decompressed, replayed as soon as it is
/// checked (each read once) — through the full backup and every incremental in order,
/// leaving TARGET a clean-shutdown instance with no backup slots.
///
/// TARGET is claimed before anything is written: created with mkdir when missing, then
/// marked by creating the restore marker exclusively, so of two restores into one TARGET
/// exactly one proceeds; the marker stays (locked) for the whole run and is removed last.
/// On any failure or interruption TARGET holds nothing of the restore (and is removed if
/// the restore created it). A restore killed outright (kill -9, a crash) cannot clean up:
/// its TARGET keeps the marker, whose lock went with the process, and the next restore into
/// that TARGET removes what it left before it starts.
public struct RestoreInstance {
    public struct Summary: Sendable {
        public var setDirectory = ""
        public var target = ""
        public var databases = 0
        public var generations = 0
        public var transactionsReplayed = 0
        public var bytes: Int64 = 0
        public var seconds = 0.0
        /// From the first log generation read to the end of replay (logs are read as they are replayed).
        public var replaySeconds = 0.0
        public var logBytesReplayed: Int64 = 0
        /// The commit time of the last transaction replayed, and where a stop ended replay.
        public var lastCommitMicros: UInt64?
        public var stoppedAt: LogPosition?
        /// TARGET held what a restore killed earlier left (marked, its lock gone): removed first.
        public var removedInterruptedRestore = false
    }

    /// What a restore reports as it runs (as backup's status callback).
    public enum Status: Sendable {
        /// The set was read and checked for structure; `totalBytes` are its files' sizes.
        case begin(totalBytes: Int64)
        case progress(done: Int64, total: Int64, file: String)
    }

    let fs: any FileSystem
    /// Where the set is read from (object storage, an encrypted repository); `fs` when nil.
    public var setFS: (any FileSystem)?
    /// Bytes per second read from the set at most (`--max-rate`); nil: as fast as it goes.
    public var maxBytesPerSecond: Int64?
    /// Point-in-time restore: replay stops there (`BackupManifest.checkStop`, checked before
    /// TARGET is touched) and the log after it is discarded; only the part of the set replay
    /// can reach is read (`BackupManifest.needed`).
    public var stopAt: Instance.RecoveryStop?
    public init(fs: any FileSystem = PosixFileSystem(), maxBytesPerSecond: Int64? = nil) {
        self.fs = fs
        self.maxBytesPerSecond = maxBytesPerSecond
    }

    /// How often cleanup retries a delete that failed (an I/O error may be transient).
    static let cleanupAttempts = 20

    /// Restores the set in `dir` into `target`. `isCancelled` is polled between chunks of
    /// the images, between log generations and during replay; when it returns true the
    /// restore stops with `JET_errTermInProgress` and TARGET is left as it was.
    public func restore(from dir: String, to target: String, owner: String, isCancelled: () -> Bool = { false },
                        status: (Status) -> Void = { _ in }) throws -> Summary {
        let t0 = Clock.monotonicSeconds()
        try checkTarget(target)
        let verifier = SetVerifier(fs: setFS ?? fs, maxBytesPerSecond: maxBytesPerSecond)
        let (setDir, whole) = try verifier.open(dir)
        try stopAt.map { try whole.checkStop($0, setDir: setDir) }
        let m = stopAt.map { whole.needed(for: $0) } ?? whole
        if isCancelled() { throw JetError(.termInProgress, "the restore into \(target) was interrupted before it wrote anything") }
        status(.begin(totalBytes: m.files.reduce(Int64(0)) { $0 + $1.size }))
        let (created, lock, reclaimed) = try claim(target, owner: "restore from \(setDir) by \(owner)")
        var s = Summary()
        s.removedInterruptedRestore = reclaimed
        s.setDirectory = setDir
        s.target = target
        do {
            let (pass, sink) = try layOut(m, setDir: setDir, target: target, verifier: verifier, isCancelled: isCancelled, status: status)
            let tr = Clock.monotonicSeconds()
            let inst = try replay(pass, sink: sink, target: target, owner: owner, stopAt: stopAt, summary: &s, isCancelled: isCancelled,
                                  status: status)
            do {
                s.transactionsReplayed = inst.recoveryReport.transactionsReplayed
                s.lastCommitMicros = inst.recoveryReport.lastCommitTime
                s.stoppedAt = inst.recoveryReport.stoppedAt
                if let g = s.stoppedAt?.generation { s.generations = Int(g - m.chain[0].genLow) + 1 }
                try inst.clearBackupState()
                try inst.close()
            } catch {
                try? inst.close()
                throw error
            }
            s.replaySeconds = Clock.monotonicSeconds() - tr
            // The last moment the restore can still be undone: past the marker it is complete.
            if isCancelled() { throw JetError(.termInProgress, "the restore was interrupted") }
            try fs.remove(FilePaths.join(target, FileNames.restoreMarker))
            try fs.syncDirectory(target)
            EventLog(fs: fs, path: FilePaths.join(target, FileNames.events)).log(.restoreEnd, "restore finished", [
                ("from", .string(setDir)), ("generations", .int(Int64(s.generations))),
                ("transactions", .int(Int64(s.transactionsReplayed))), ("databases", .int(Int64(s.databases))),
            ])
        } catch {
            let emptied = undo(target, created: created)
            lock.release()
            let e = error as? JetError ?? JetError(.diskIO, "\(error)")
            if !emptied {
                throw JetError(e.code, e.message + "; \(target) could not be emptied and is marked as an unfinished restore: "
                    + "remove it by hand before restoring into it again")
            }
            if e.code == .termInProgress {
                throw JetError(.termInProgress, "the restore into \(target) was interrupted (signal or shutdown); "
                    + "\(target) was \(created ? "removed" : "emptied"), as it was before")
            }
            throw e
        }
        lock.release()
        s.seconds = Clock.monotonicSeconds() - t0
        return s
    }

    // MARK: TARGET

    /// The refusals that need no write: TARGET must be missing (under an existing parent)
    /// or an empty directory, and writable. `claim` decides again, atomically.
    func checkTarget(_ target: String) throws {
        if fs.exists(target) || fs.isSymlink(target) {
            guard fs.isDirectory(target), !fs.isSymlink(target) else {
                throw JetError(.invalidPath, "restore target \(target) exists and is not a directory; choose a new directory")
            }
            let entries: [String]
            do { entries = try fs.list(target) } catch { throw targetError(error, target, checking: target) }
            guard entries.isEmpty || isLeftOfKilledRestore(target, entries) else {
                if entries.contains(FileNames.restoreMarker) { throw inProgress(target) }
                throw JetError(.invalidPath, "restore target \(target) is not empty; restore into a new or empty directory (nothing was touched)")
            }
            guard fs.isWritableDirectory(target) else { throw permissionDenied(target, in: target) }
        } else {
            let parent = FilePaths.directory(of: target)
            guard fs.isDirectory(parent) else {
                throw JetError(.invalidPath, "the parent of restore target \(target) does not exist; create \(parent) first")
            }
            guard fs.isWritableDirectory(parent) else { throw permissionDenied(target, in: parent) }
        }
    }

    /// Makes TARGET this restore's: mkdir when it is missing (another process that gets
    /// there first makes ours fail, and the marker decides), then the restore marker created
    /// exclusively (only one process can) and locked for the run, then TARGET checked empty
    /// again. A marker left by a restore that was killed is taken over instead (`reclaim`).
    /// Returns whether TARGET was created here, the marker's lock, and whether it was taken over.
    func claim(_ target: String, owner: String) throws -> (created: Bool, lock: any FileLock, reclaimed: Bool) {
        let parent = FilePaths.directory(of: target)
        var created = false
        if !fs.exists(target) && !fs.isSymlink(target) {
            do {
                try fs.createDirectory(target)
                created = true
            } catch {
                guard fs.exists(target) || fs.isSymlink(target) else { throw targetError(error, target, checking: parent) }
            }
        }
        guard fs.isDirectory(target), !fs.isSymlink(target) else {
            throw JetError(.invalidPath, "restore target \(target) exists and is not a directory; choose a new directory")
        }
        let marker = FilePaths.join(target, FileNames.restoreMarker)
        do {
            if created { try fs.syncDirectory(parent) }
            try fs.open(marker, .createNew).close()
        } catch {
            if fs.exists(marker) {
                if let lock = try reclaim(target, owner: owner) { return (false, lock, true) }
                throw inProgress(target)
            }
            if created { try? fs.removeDirectory(target) }
            // The marker was there when we tried to create it and is gone now: the restore
            // that held it finished in between, and TARGET holds its instance.
            if let entries = try? fs.list(target), !entries.isEmpty {
                throw JetError(.invalidPath, "restore target \(target) is not empty (another restore finished into it while this one "
                    + "started); restore into a new or empty directory (nothing was touched)")
            }
            throw targetError(error, target, checking: target)
        }
        do {
            let lock = try fs.lock(marker, owner: owner)
            do {
                try fs.syncDirectory(target)
                let others = try fs.list(target).filter { $0 != FileNames.restoreMarker }
                guard others.isEmpty else {
                    let some = others.prefix(3).joined(separator: ", ")
                    throw JetError(.invalidPath, "restore target \(target) is not empty (\(some) appeared while the restore started); "
                        + "restore into a new or empty directory")
                }
            } catch {
                lock.release()
                throw error
            }
            return (created, lock, false)
        } catch {
            // Only the marker is ours; anything another process put in TARGET stays.
            removeMarkerOnce(marker)
            if created { try? fs.removeDirectory(target) }
            try? fs.syncDirectory(created ? parent : target)
            throw targetError(error, target, checking: target)
        }
    }

    /// True when TARGET holds only a marker with its owner's record and what the restore wrote
    /// (no write: `reclaim` decides, under the lock). A marker without a record is one being
    /// claimed right now.
    func isLeftOfKilledRestore(_ target: String, _ entries: [String]) -> Bool {
        entries.contains(FileNames.restoreMarker) && !((try? fs.readAll(FilePaths.join(target, FileNames.restoreMarker))) ?? []).isEmpty
    }

    /// Takes over the marker of a restore that no longer runs: its lock is free (a lock goes
    /// with its process), and it names its owner (a marker without a record is being claimed
    /// by a restore between creating and locking it: that one is left alone). Under the lock,
    /// everything else in TARGET — half a restore — is removed. Returns nil when a live restore
    /// holds the marker.
    func reclaim(_ target: String, owner: String) throws -> (any FileLock)? {
        let marker = FilePaths.join(target, FileNames.restoreMarker)
        guard !((try? fs.readAll(marker)) ?? []).isEmpty else { return nil }
        let lock: any FileLock
        do {
            lock = try fs.lock(marker, owner: owner)
        } catch let e as JetError where e.code == .fileAccessDenied {
            return nil
        }
        let rest = removeAllButMarker(target)
        do {
            guard rest.isEmpty else {
                throw JetError(.restoreInProgress, "\(target) holds what an interrupted restore left, and \(rest.prefix(3).joined(separator: ", ")) "
                    + "could not be removed; remove \(target) by hand and restore again")
            }
            try fs.syncDirectory(target)
        } catch {
            lock.release()
            throw error
        }
        return lock
    }

    func inProgress(_ target: String) -> JetError {
        let marker = FilePaths.join(target, FileNames.restoreMarker)
        let holder = ((try? fs.readAll(marker)) ?? []).prefix(300)
        let who = String(decoding: holder, as: UTF8.self).trimmed
            .split(separator: "\n").dropFirst().joined(separator: " ")  // the owner record's first line is its pid, named again after it
        return JetError(.restoreInProgress,
                        "a restore into \(target) is running\(who.isEmpty ? "" : " (\(who))"); "
                            + "wait for it to finish, or restore into another directory")
    }

    func permissionDenied(_ target: String, in dir: String) -> JetError {
        JetError(.invalidPath, "restore target \(target): "
            + "permission denied (this process cannot write in \(dir), or it is on a read-only file system); "
                 + "restore into a directory you can write to (nothing was touched)")
    }

    /// An I/O error while claiming TARGET is a bad destination when `dir` cannot be written.
    func targetError(_ error: Error, _ target: String, checking dir: String) -> Error {
        if let e = error as? JetError, e.code == .diskIO, !fs.isWritableDirectory(dir) { return permissionDenied(target, in: dir) }
        return error
    }

    /// Removes the marker once (retrying a failed delete): after that TARGET may already be
    /// another restore's claim, so a marker seen again is not ours. False if it stayed.
    @discardableResult
    func removeMarkerOnce(_ marker: String) -> Bool {
        for _ in 0..<Self.cleanupAttempts {
            do {
                try fs.remove(marker)
                return true
            } catch {
                if !fs.exists(marker) { return true }
            }
        }
        return false
    }

    /// Removes everything in TARGET but the marker, retrying failed deletes (an I/O error may
    /// be transient). Returns what stayed (TARGET itself when it could not even be listed).
    func removeAllButMarker(_ target: String) -> [String] {
        var rest = [target]
        for _ in 0..<Self.cleanupAttempts {
            for name in (try? fs.list(target)) ?? [] where name != FileNames.restoreMarker {
                try? fs.removeTree(FilePaths.join(target, name))
            }
            guard let now = try? fs.list(target) else { continue }
            rest = now.filter { $0 != FileNames.restoreMarker }
            if rest.isEmpty { break }
        }
        return rest
    }

    /// Removes everything the restore put in TARGET; the marker goes last, so until it is
    /// gone whatever is left is refused as an interrupted restore, never opened. Deletes
    /// are retried: a transient I/O error must not leave a half restore. Returns false if
    /// something could not be deleted: then the marker stays and every command refuses
    /// TARGET (JET_errRestoreInProgress) rather than open a half restore.
    func undo(_ target: String, created: Bool) -> Bool {
        let marker = FilePaths.join(target, FileNames.restoreMarker)
        let rest = removeAllButMarker(target)
        guard rest.isEmpty else {
            try? fs.syncDirectory(target)
            return false
        }
        guard removeMarkerOnce(marker) else { return false }
        if created {
            // Fails harmlessly if another restore has claimed TARGET since the marker went.
            for _ in 0..<Self.cleanupAttempts where fs.exists(target) {
                do { try fs.removeDirectory(target) } catch { if (try? fs.list(target))?.isEmpty == false { break } }
            }
        }
        try? fs.syncDirectory(created ? FilePaths.directory(of: target) : target)
        return true
    }

    // MARK: Writing

    /// The first part of the pass verify makes: the database images, checked and written,
    /// then instance.json and a checkpoint at the set's replay start. Returns the pass, left
    /// at the set's first log generation, and the sink that writes into TARGET.
    private func layOut(_ m: BackupManifest, setDir: String, target: String, verifier: SetVerifier,
                        isCancelled: () -> Bool, status: (Status) -> Void) throws -> (SetVerifier.Pass, SetVerifier.Sink) {
        let fs = self.fs
        let sink = SetVerifier.Sink(
            image: { f in try SetFileWriter(fs: fs, path: FilePaths.join(target, f.name)) },
            log: { f, raw in
                var w = try SetFileWriter(fs: fs, path: FilePaths.join(target, FileNames.archivedLog(f.generation!)))
                do {
                    try raw.withUnsafeBytes { try w.append($0) }
                    // Written back now, made durable together after replay (`syncLogs`).
                    let sha = w.finishDeferringSync()
                    w.file.close()
                    return sha
                } catch {
                    w.abandon()
                    throw error
                }
            })
        let pass = SetVerifier.Pass(verifier, m, setDir: setDir)
        try pass.images(sink: sink, isCancelled: isCancelled) { done, total, file in
            status(.progress(done: done, total: total, file: file))
        }
        let sig = m.logSignature.signature!
        var p = InstanceParameters()
        p.pageSize = m.pageSize
        p.logSignatureRandom = sig.random
        p.logSignatureTime = sig.time
        // The newest generation's size, which the restored log continues with: the pass
        // proves it (stored size, raw size, and the size its header says) before replay ends.
        if let last = m.files.filter({ $0.kind == .log }).max(by: { $0.generation! < $1.generation! }) {
            let n = Int(last.rawSize ?? last.size)
            if (try? InstanceParameters.checkLogFileSize(n)) != nil { p.logFileSize = n }
        }
        let chk = Checkpoint(sequence: 1, logSignature: sig,
                             position: LogPosition(generation: m.replayFrom.generation, offset: m.replayFrom.offset),
                             time: Clock.microsecondsSinceEpoch())
        try InstanceFiles.writeCheckpoint(fs: fs, directory: target, chk)
        try InstanceFiles.writeParameters(fs: fs, directory: target, p)
        try fs.syncDirectory(target)
        return (pass, sink)
    }

    /// fsyncs the log generations in TARGET, written without waiting for each (one fsync
    /// after each of many small files costs more than replaying them): the restore is
    /// complete only when they are durable.
    private func syncLogs(in target: String) throws {
        for name in try fs.list(target) where FileNames.parseArchivedLog(name) != nil {
            let f = try fs.open(FilePaths.join(target, name), .readOnly)
            defer { f.close() }
            try f.sync()
        }
    }

    /// The rest of the pass, and replay: TARGET is opened as a restored instance whose
    /// recovery takes each log generation from the pass as it is read, checked and written
    /// (`SetLogFeed`), so each is read once. A failure at any generation fails the restore,
    /// which then empties TARGET.
    private func replay(_ pass: SetVerifier.Pass, sink: SetVerifier.Sink, target: String, owner: String, stopAt: Instance.RecoveryStop?,
                        summary s: inout Summary, isCancelled: () -> Bool, status: (Status) -> Void) throws -> Instance {
        let fs = self.fs
        let inst = try withoutActuallyEscaping(status) { status in
            let feed = SetLogFeed(pass: pass, sink: sink) { done, total, file in status(.progress(done: done, total: total, file: file)) }
            let inst = try Instance.open(at: target, fs: fs, owner: owner, restoring: true, stopAt: stopAt, logs: feed, isCancelled: isCancelled)
            do {
                try feed.finish(isCancelled: isCancelled)
            } catch {
                try? inst.close()
                throw error
            }
            return inst
        }
        do {
            try syncLogs(in: target)
        } catch {
            try? inst.close()
            throw error
        }
        let r = pass.report
        s.databases = r.databases
        s.generations = r.generations
        s.bytes = r.bytes
        s.logBytesReplayed = r.logBytesRaw
        return inst
    }
}
