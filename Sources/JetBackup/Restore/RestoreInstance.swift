import Foundation
import JetStore

/// Hard restore of a backup set into a new instance (ESE's JetRestoreInstance, esentutl's
/// hard recovery): verify everything, copy the database images, lay the logs out
/// decompressed, replay the full backup and every incremental in order, and leave TARGET a
/// clean-shutdown instance with no backup slots. On any failure TARGET holds nothing of
/// the restore (and is removed if the restore created it).
public struct RestoreInstance {
    public struct Summary: Sendable {
        public var setDirectory = ""
        public var target = ""
        public var databases = 0
        public var generations = 0
        public var transactionsReplayed = 0
        public var bytes: Int64 = 0
        public var seconds = 0.0
        public var replaySeconds = 0.0
        public var logBytesReplayed: Int64 = 0
    }

    let fs: any FileSystem
    public init(fs: any FileSystem = PosixFileSystem()) { self.fs = fs }

    /// How often cleanup retries a delete that failed (an I/O error may be transient).
    static let cleanupAttempts = 20

    public func restore(from dir: String, to target: String, owner: String,
                        progress: (Int64, Int64, String) -> Void = { _, _, _ in }) throws -> Summary {
        let t0 = Clock.monotonicSeconds()
        // TARGET: missing (we create it) or an empty directory.
        var created = false
        if fs.exists(target) || fs.isSymlink(target) {
            guard fs.isDirectory(target), !fs.isSymlink(target) else {
                throw JetError(.invalidPath, "restore target \(target) exists and is not a directory; choose a new directory")
            }
            let entries = try fs.list(target)
            guard entries.isEmpty else {
                if entries.contains(FileNames.restoreMarker) {
                    throw JetError(.restoreInProgress, "a restore into \(target) is running or was interrupted; wait for it, or remove \(target) and restore again")
                }
                throw JetError(.invalidPath, "restore target \(target) is not empty; restore into a new or empty directory (nothing was touched)")
            }
        } else {
            let parent = FilePaths.directory(of: target)
            guard fs.isDirectory(parent) else {
                throw JetError(.invalidPath, "the parent of restore target \(target) does not exist; create \(parent) first")
            }
        }
        let verifier = SetVerifier(fs: fs)
        let (setDir, m) = try verifier.manifest(in: dir)
        try verifier.checkStructure(m, setDir: setDir)
        var s = Summary()
        s.setDirectory = setDir
        s.target = target
        if !fs.exists(target) {
            try fs.createDirectory(target)
            do {
                try fs.syncDirectory(FilePaths.directory(of: target))
            } catch {
                for _ in 0..<Self.cleanupAttempts where fs.exists(target) { try? fs.removeDirectory(target) }
                throw error
            }
            created = true
        }
        do {
            try fs.writeAtomically(FilePaths.join(target, FileNames.restoreMarker), Array("restore from \(setDir) by \(owner)\n".utf8))
            try layOut(m, setDir: setDir, target: target, verifier: verifier, summary: &s, progress: progress)
            let tr = Clock.monotonicSeconds()
            let inst = try Instance.open(at: target, fs: fs, owner: owner, restoring: true)
            do {
                s.transactionsReplayed = inst.recoveryReport.transactionsReplayed
                try inst.clearBackupState()
                try inst.close()
            } catch {
                try? inst.close()
                throw error
            }
            s.replaySeconds = Clock.monotonicSeconds() - tr
            try fs.remove(FilePaths.join(target, FileNames.restoreMarker))
            try fs.syncDirectory(target)
            EventLog(fs: fs, path: FilePaths.join(target, FileNames.events)).log(.restoreEnd, "restore finished", [
                ("from", .string(setDir)), ("generations", .int(Int64(s.generations))),
                ("transactions", .int(Int64(s.transactionsReplayed))), ("databases", .int(Int64(s.databases))),
            ])
        } catch {
            // Nothing of the restore may remain in TARGET. The marker goes last: until it is
            // gone, whatever is left is refused as an interrupted restore, never opened.
            // Deletes are retried: a transient I/O error must not leave a half restore. If
            // something still cannot be deleted, the marker stays and every command refuses
            // TARGET (JET_errRestoreInProgress) rather than open a half restore.
            let marker = FilePaths.join(target, FileNames.restoreMarker)
            var rest: [String] = []
            for _ in 0..<Self.cleanupAttempts {
                for name in (try? fs.list(target)) ?? [] where name != FileNames.restoreMarker {
                    try? fs.removeTree(FilePaths.join(target, name))
                }
                guard let now = try? fs.list(target) else { continue }
                rest = now.filter { $0 != FileNames.restoreMarker }
                if rest.isEmpty { break }
            }
            if rest.isEmpty {
                for _ in 0..<Self.cleanupAttempts where fs.exists(marker) { try? fs.remove(marker) }
                for _ in 0..<Self.cleanupAttempts where created && fs.exists(target) && !fs.exists(marker) { try? fs.removeDirectory(target) }
            }
            try? fs.syncDirectory(created ? FilePaths.directory(of: target) : target)
            if fs.exists(marker) {
                let e = error as? JetError ?? JetError(.diskIO, "\(error)")
                throw JetError(e.code, e.message + "; \(target) could not be emptied and is marked as an unfinished restore: remove it by hand before restoring into it again")
            }
            throw error
        }
        s.seconds = Clock.monotonicSeconds() - t0
        return s
    }

    /// Writes instance.json, the verified database images, the decompressed and verified
    /// logs (as archived generations), and a checkpoint at the set's replay start.
    private func layOut(_ m: BackupManifest, setDir: String, target: String, verifier: SetVerifier,
                        summary s: inout Summary, progress: (Int64, Int64, String) -> Void) throws {
        let total = m.files.reduce(Int64(0)) { $0 + $1.size }
        var done: Int64 = 0
        let sig = m.logSignature.signature!
        var p = InstanceParameters()
        p.pageSize = m.pageSize
        p.logSignatureRandom = sig.random
        p.logSignatureTime = sig.time
        for db in m.databases {
            let f = m.files.first { $0.name == db.file }!
            var w = try SetFileWriter(fs: fs, path: FilePaths.join(target, db.file))
            do {
                _ = try verifier.checkImage(f, db: db, m: m, setDir: setDir, sha: false, copy: &w) { n in
                    done += Int64(n)
                    progress(done, total, f.name)
                }
                _ = try w.finish()
            } catch {
                w.abandon()
                throw error
            }
            s.databases += 1
            s.bytes += f.size
        }
        var previous: UInt64?
        var logSize: Int?
        for f in m.files.filter({ $0.kind == "log" }).sorted(by: { $0.generation! < $1.generation! }) {
            let stored = try verifier.readChecked(f, setDir: setDir, sha: false)
            let raw = try verifier.rawLog(f, stored, setDir: setDir)
            let (h, _) = try verifier.checkLog(raw, file: FilePaths.join(setDir, f.name), generation: f.generation!, signature: sig, previous: previous)
            previous = h.creationTime
            logSize = Int(h.fileSize)
            var w = try SetFileWriter(fs: fs, path: FilePaths.join(target, FileNames.archivedLog(f.generation!)))
            try raw.withUnsafeBytes { try w.append($0) }
            _ = try w.finish()
            s.generations += 1
            s.logBytesReplayed += Int64(raw.count)
            done += f.size
            progress(done, total, f.name)
        }
        if let n = logSize, (try? InstanceParameters.checkLogFileSize(n)) != nil { p.logFileSize = n }
        let chk = Checkpoint(sequence: 1, logSignature: sig,
                             position: LogPosition(generation: m.replayFrom.generation, offset: m.replayFrom.offset),
                             time: Clock.microsecondsSinceEpoch())
        try InstanceFiles.writeCheckpoint(fs: fs, directory: target, chk)
        try InstanceFiles.writeParameters(fs: fs, directory: target, p)
        try fs.syncDirectory(target)
    }
}
