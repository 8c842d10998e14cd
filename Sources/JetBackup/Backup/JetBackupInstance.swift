import Foundation
import JetStore

/// `JetBackupInstance`: full, incremental, atomic and truncate-only backups of an open
/// instance, online (other threads keep committing), every page and log record verified.
///
/// On any failure (error, cancellation, a throwing status callback) the destination is left
/// as it was, the database headers are unchanged and no log is truncated: the headers are
/// updated and logs truncated only after the set is complete and durable, and each step
/// that changed the destination is undone in reverse order.
public enum JetBackupInstance {
    public static func run(_ instance: Instance, _ options: BackupOptions,
                           status: @escaping (BackupStatus) throws -> Void = { _ in }) throws -> BackupSummary {
        // Refusals that need nothing from the instance come first.
        if options.snapshot {
            throw JetError(.invalidGrbit, "snapshot backups (JET_bitBackupSnapshot) are reserved and not supported; take a full or incremental backup")
        }
        if options.atomic && options.incremental {
            throw JetError(.invalidGrbit, "--atomic and --incremental cannot be combined (JET_bitBackupAtomic with JET_bitBackupIncremental); an incremental backup is already all-or-nothing")
        }
        if options.atomic && options.directory == nil {
            throw JetError(.invalidGrbit, "--atomic needs a backup directory")
        }
        if let l = options.compressionLevel, !Zstd.levels.contains(l) {
            throw JetError(.invalidParameter, "compression level \(l) is out of range; use 1 to 19")
        }
        if options.incremental && instance.parameters.circularLogging {
            throw JetError(.invalidBackup, "incremental backups need every log generation, but circular logging is on; turn it off ('jetbackup config circular-logging false') and take a full backup")
        }
        let fs = options.fs
        var claim: DestinationLock?
        defer { claim?.release() }
        if let dir = options.directory {
            try checkOutsideInstance(dir, instance: instance, fs: fs)
            if !fs.isDirectory(dir) || fs.isSymlink(dir) {
                if fs.exists(dir) || fs.isSymlink(dir) {
                    throw JetError(.invalidPath, "backup directory \(dir) is not a directory")
                }
                guard instance.parameters.createPathIfNotExist, !options.incremental else {
                    throw JetError(.invalidPath, "backup directory \(dir) does not exist; create it first (or set create-path-if-not-exist)")
                }
                try createPath(dir, fs: fs)
            }
            guard fs.isWritableDirectory(dir) else {
                throw JetError(.invalidPath, "backup directory \(dir) is not writable (permission denied, or a read-only file system); nothing was written: use a directory this user can write")
            }
            // Claimed before anything in it is looked at: see DestinationLock.
            claim = try DestinationLock.acquire(dir, owner: "\(options.owner), instance \(instance.path)", fs: fs)
        }
        // A full backup starts from a fresh checkpoint: every dirty page is flushed first, so
        // the set needs the log only from now on instead of up to the checkpoint depth.
        if options.kind == .full {
            try instance.checkpointForTruncation()
        }
        let start = try instance.beginBackup()
        defer { instance.endBackup() }
        var run = BackupRun(instance: instance, options: options, start: start, status: status)
        return try run.execute()
    }

    static func createPath(_ dir: String, fs: any FileSystem) throws {
        var missing: [String] = []
        var p = dir
        while !fs.exists(p) && p != "/" && p != "." { missing.append(p); p = FilePaths.directory(of: p) }
        guard fs.isWritableDirectory(p) else {
            throw JetError(.invalidPath, "backup directory \(dir) does not exist and cannot be created: \(p) is not writable (permission denied, or a read-only file system) or not a directory")
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
    static func checkOutsideInstance(_ dir: String, instance: Instance, fs: any FileSystem) throws {
        let d = fs.canonicalPath(dir), i = fs.canonicalPath(instance.path)
        let resolved = d == FilePaths.normalized(dir) ? "" : " (it resolves to \(d))"
        if FilePaths.isSameOrBelow(d, i) {
            throw JetError(.invalidPath, "backup directory \(dir)\(resolved) is \(d == i ? "the instance directory" : "inside the instance directory \(instance.path)"); a backup must live outside the instance it protects: choose a directory elsewhere")
        }
        if FilePaths.isSameOrBelow(i, d) {
            throw JetError(.invalidPath, "backup directory \(dir)\(resolved) holds the instance \(instance.path); a backup must live outside the instance it protects: choose a directory that does not contain it")
        }
    }
}

/// One backup run: its state and the undo steps of what it changed so far.
struct BackupRun {
    let instance: Instance
    let options: BackupOptions
    let start: LogPosition
    let status: (BackupStatus) throws -> Void
    var fs: any FileSystem { options.fs }
    var undo: [() -> Void] = []
    /// Set by the atomic path: the header update waits for the swap.
    var deferRecord = false
    var summary: BackupSummary
    var done: Int64 = 0
    var total: Int64 = 0
    let startTime = Clock.microsecondsSinceEpoch()
    let t0 = Clock.monotonicSeconds()

    init(instance: Instance, options: BackupOptions, start: LogPosition, status: @escaping (BackupStatus) throws -> Void) {
        self.instance = instance
        self.options = options
        self.start = start
        self.status = status
        summary = BackupSummary(kind: options.kind)
        summary.atomic = options.atomic
        summary.compression = options.compressionLevel.map { "zstd-\($0)" } ?? "none"
    }

    var events: EventLog { instance.events }

    mutating func execute() throws -> BackupSummary {
        let kind = options.kind
        switch kind {
        case .full: events.log(.fullBackupStart, "full backup started", [("directory", .string(options.directory ?? "")), ("atomic", .bool(options.atomic))])
        case .incremental: events.log(.incrementalBackupStart, "incremental backup started", [("directory", .string(options.directory ?? ""))])
        case .truncateOnly: events.log(.fullBackupStart, "log truncation started (no backup directory)")
        }
        do {
            try checkCancelled()
            switch kind {
            case .truncateOnly: try truncateOnly()
            case .full: options.atomic ? try atomicFull() : try plainFull()
            case .incremental: try incremental()
            }
            summary.seconds = Clock.monotonicSeconds() - t0
            try status(.complete(summary))
            events.log(.backupSuccess, "\(kind.rawValue) backup finished", [
                ("seconds", .double(summary.seconds)), ("bytes", .int(summary.bytesStored)),
                ("generations", .string(summary.generationsCopied.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "")),
            ])
            return summary
        } catch {
            let e = (error as? JetError) ?? JetError(.diskIO, "\(error)")
            for step in undo.reversed() { step() }
            if e.code == .termInProgress {
                events.log(.backupAborted, "backup aborted: \(e.message)", [("error", .string(e.code.name))], level: .warning)
            } else {
                events.log(.backupFailure, "backup failed: \(e.message)", [("error", .string(e.code.name)), ("code", .int(Int64(e.code.rawValue)))], level: .error)
            }
            try? status(.fail(e))
            throw e
        }
    }

    func checkCancelled() throws {
        if options.isCancelled() || instance.isTerminating {
            throw JetError(.termInProgress, "the backup was interrupted (signal or instance shutdown); nothing of it was kept, the headers and logs are unchanged")
        }
    }

    mutating func advance(_ n: Int, file: String) throws {
        done += Int64(n)
        try checkCancelled()
        try status(.progress(done: done, total: max(total, done), file: file))
    }

    // MARK: Truncate-only

    mutating func truncateOnly() throws {
        try status(.begin(kind: .truncateOnly, totalBytes: 0))
        if instance.parameters.circularLogging {
            events.log(.nothingToTruncate, "circular logging is on: the engine deletes old generations itself")
            return
        }
        try instance.checkpointForTruncation()
        try truncate(below: instance.currentCheckpoint.generation)
    }

    mutating func truncate(below bound: UInt32) throws {
        if instance.parameters.circularLogging {
            events.log(.nothingToTruncate, "circular logging is on: nothing to truncate")
            return
        }
        try instance.checkpointForTruncation()
        if let r = try instance.truncateLogs(below: bound) {
            summary.generationsTruncated = r
            events.log(.logsTruncated, "log generations \(r.lowerBound)-\(r.upperBound) truncated",
                       [("low", .int(Int64(r.lowerBound))), ("high", .int(Int64(r.upperBound)))])
        } else {
            events.log(.nothingToTruncate, "no log generation could be truncated")
        }
    }

    // MARK: Full

    mutating func plainFull() throws {
        let dir = options.directory!
        try prepareEmpty(dir)
        try writeFullSet(into: dir, markerDir: dir)
    }

    /// DIR must be empty but for the leftovers of a killed run, which are removed (and the
    /// run's own lock file).
    func prepareEmpty(_ dir: String) throws {
        if BackupSetLayout.locate(dir, fs: fs) == nil {
            try BackupSetLayout.cleanLeftovers(dir, keeping: [], fs: fs)
        }
        let entries = try fs.list(dir).filter { $0 != BackupSetLayout.lock }
        guard entries.isEmpty else {
            throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) is not empty (\(entries.prefix(3).joined(separator: ", "))\(entries.count > 3 ? ", …" : "")); use an empty directory, --incremental to extend the set in it, or --atomic to replace it")
        }
    }

    /// Builds a complete full set in `dir` (empty). The marker in `markerDir` lists every
    /// file written, so a killed run's files are found and removed.
    mutating func writeFullSet(into dir: String, markerDir: String?) throws {
        let dbs = instance.databaseSnapshots
        let logSize = Int64(instance.parameters.logFileSize)
        total = dbs.reduce(Int64(0)) { $0 + ((try? fs.open($1.path, .readOnly).size()) ?? 0) }
            + Int64(Int(instance.currentGeneration) - Int(start.generation) + 1) * logSize
        try status(.begin(kind: .full, totalBytes: total))
        // The marker lists every name this run may create (manifest and sums included), so
        // an undo or the next run removes exactly those. Each undo step is registered before
        // the change it undoes, so a failure inside that change is undone too.
        var names = dbs.map { FileNames.database($0.name) } + [BackupSetLayout.sums, BackupSetLayout.manifest]
        let dirCopy = dir
        let fsCopy = fs
        let created = NameBox(names)
        if let m = markerDir {
            undo.append {
                for n in created.names where fsCopy.exists(FilePaths.join(m, n)) { try? fsCopy.remove(FilePaths.join(m, n)) }
                try? BackupSetLayout.cleanLeftovers(m, keeping: [], fs: fsCopy)
            }
            try BackupSetLayout.writeMarker(m, names: names, fs: fs)
        } else {
            undo.append { try? fsCopy.removeTree(dirCopy) }
        }
        let image = DatabaseHeader.BackupInfo(genLow: start.generation, genHigh: start.generation, position: start, time: startTime)
        var files: [BackupManifest.File] = []
        var manifestDbs: [BackupManifest.Database] = []
        for db in dbs {
            try checkCancelled()
            let name = FileNames.database(db.name)
            events.log(.fileStart, "copying \(name)", [("file", .string(name))])
            let copier = DatabaseCopier(fs: fs, snapshot: db, imageInfo: image)
            let r = try copier.copy(to: FilePaths.join(dir, name), backupIndex: 0) { n in try advance(n, file: name) }
            files.append(r.file)
            manifestDbs.append(BackupManifest.Database(name: db.name, file: name, dbid: db.header.dbid,
                                                       signature: .init(db.header.signature), pageSize: db.pageSize, pages: r.pages))
            summary.pages += r.pages
            summary.bytesRead += r.file.size
            summary.bytesStored += r.file.size
            events.log(.fileEnd, "copied \(name)", [("file", .string(name)), ("pages", .int(Int64(r.pages))), ("bytes", .int(r.file.size))])
        }
        summary.databases = dbs.count
        // The log, from the checkpoint at the start through a roll after the pages: every
        // change in a copied page is in it (pages reach disk only after their log does).
        let last = try instance.rollLog()
        let gens = Array(start.generation...last)
        names += gens.map { FileNames.archivedLog($0) + (options.compressionLevel == nil ? "" : ".zst") }
        created.names = names
        if let m = markerDir { try BackupSetLayout.writeMarker(m, names: names, fs: fs) }
        let logs = try copyLogs(gens, into: dir, backupIndex: 0, previousCreation: nil)
        files += logs
        let endTime = Clock.microsecondsSinceEpoch()
        let manifest = BackupManifest(
            logSignature: .init(instance.parameters.logSignature),
            replayFrom: .init(generation: start.generation, offset: start.offset),
            pageSize: instance.parameters.pageSize, databases: manifestDbs,
            chain: [BackupManifest.Backup(type: "full", start: Clock.rfc3339(microseconds: startTime), end: Clock.rfc3339(microseconds: endTime),
                                          startMicros: startTime, endMicros: endTime, genLow: start.generation, genHigh: last,
                                          compression: summary.compression)],
            files: files)
        try commitManifest(manifest, in: dir)
        // The manifest is in place: the set is complete. A marker that cannot be removed is
        // harmless (a set with a manifest wins; the next run removes it).
        if let m = markerDir { try? BackupSetLayout.removeMarker(m, fs: fs) }
        summary.setDirectory = dir
        summary.generationsCopied = start.generation...last
        if !deferRecord {
            try recordAndTruncate(full: true, genLow: start.generation, genHigh: last)
        }
    }

    mutating func copyLogs(_ gens: [UInt32], into dir: String, backupIndex: Int, previousCreation: UInt64?) throws -> [BackupManifest.File] {
        let copier = LogCopier(fs: fs, signature: instance.parameters.logSignature, compressionLevel: options.compressionLevel)
        let inst = instance
        let cancelled = options.isCancelled
        var progressed: [(String, Int)] = []
        let copied = try copier.copy(gens, source: { inst.generationPath($0) }, into: dir, backupIndex: backupIndex,
                                     previousCreation: previousCreation,
                                     isCancelled: { cancelled() || inst.isTerminating }) { name, n in
            progressed.append((name, n))
        }
        for c in copied {
            summary.bytesRead += c.rawSize
            summary.bytesStored += c.file.size
            summary.logBytesRaw += c.rawSize
            summary.logBytesStored += c.file.size
        }
        for (name, n) in progressed { try advance(n, file: name) }
        if let lo = gens.first, let hi = gens.last {
            events.log(.logRangeCopied, "log generations \(lo)-\(hi) copied",
                       [("low", .int(Int64(lo))), ("high", .int(Int64(hi))), ("compression", .string(summary.compression))])
        }
        return copied.map(\.file)
    }

    /// Writes SHA256SUMS then MANIFEST.json (each: temp file, fsync, rename), then fsyncs
    /// the directory. The manifest's rename is the moment the set exists.
    func commitManifest(_ m: BackupManifest, in dir: String) throws {
        try fs.writeAtomically(FilePaths.join(dir, BackupSetLayout.sums), m.sha256sums())
        try fs.writeAtomically(FilePaths.join(dir, BackupSetLayout.manifest), try m.encoded())
    }

    /// After the set is complete: headers record it, then logs it holds that recovery no
    /// longer needs are deleted. A failure to record undoes the set (the caller's undo
    /// steps); a failure to truncate is only reported — the backup itself is good.
    mutating func recordAndTruncate(full: Bool, genLow: UInt32, genHigh: UInt32) throws {
        try checkCancelled()
        try instance.recordBackup(full: full, DatabaseHeader.BackupInfo(genLow: genLow, genHigh: genHigh, position: start, time: startTime))
        undo.removeAll()
        do {
            try truncate(below: genHigh + 1)
        } catch {
            events.log(.logsTruncated, "the backup succeeded but log truncation failed: \(error)", level: .warning)
        }
    }

    // MARK: Atomic

    mutating func atomicFull() throws {
        let dir = options.directory!
        let temp = FilePaths.join(dir, BackupSetLayout.temp)
        let new = FilePaths.join(dir, BackupSetLayout.new)
        let old = FilePaths.join(dir, BackupSetLayout.old)
        try checkNotForeign(dir)
        // Leftovers: a killed swap leaves old/ (and maybe no new/): put the previous set back.
        if fs.exists(old) {
            if fs.exists(new) { try fs.removeTree(old) } else { try fs.rename(old, new) }
            try fs.syncDirectory(dir)
        }
        if fs.exists(temp) { try fs.removeTree(temp); try fs.syncDirectory(dir) }
        let unexpected = try fs.list(dir).filter { $0 != BackupSetLayout.new && $0 != BackupSetLayout.lock }
        guard unexpected.isEmpty else {
            throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) holds files that are not an atomic backup set (\(unexpected.prefix(3).joined(separator: ", "))); use an empty directory for --atomic")
        }
        let fsTemp = fs
        undo.append { try? fsTemp.removeTree(temp); try? fsTemp.syncDirectory(dir) }
        try fs.createDirectory(temp)
        try fs.syncDirectory(dir)
        try writeFullSetDeferringRecord(into: temp)
        // Swap: at every instant new/ or old/ holds a complete set.
        let hadPrevious = fs.exists(new)
        let fsCopy = fs
        if hadPrevious {
            undo.append { if !fsCopy.exists(new) { try? fsCopy.rename(old, new); try? fsCopy.syncDirectory(dir) } }
            try fs.rename(new, old)
            try fs.syncDirectory(dir)
        }
        undo.append { if fsCopy.exists(new) && !fsCopy.exists(temp) && (!hadPrevious || fsCopy.exists(old)) { try? fsCopy.rename(new, temp); try? fsCopy.syncDirectory(dir) } }
        try fs.rename(temp, new)
        try fs.syncDirectory(dir)
        summary.setDirectory = new
        try recordAndTruncate(full: true, genLow: start.generation, genHigh: summary.generationsCopied!.upperBound)
        if hadPrevious {
            try? fs.removeTree(old)
            try? fs.syncDirectory(dir)
        }
    }

    /// The set an atomic run would replace (new/, or old/ of a killed swap) must be this
    /// instance's, unless the caller asked to replace a foreign one. A set whose manifest
    /// cannot be read at all cannot be restored either; it is replaced.
    func checkNotForeign(_ dir: String) throws {
        guard !options.replaceForeign else { return }
        for sub in [BackupSetLayout.new, BackupSetLayout.old] {
            let p = FilePaths.join(FilePaths.join(dir, sub), BackupSetLayout.manifest)
            guard fs.exists(p), !fs.isSymlink(p), let bytes = try? fs.readAll(p),
                  let m = try? BackupManifest.decode(bytes, path: p), let sig = m.logSignature.signature else { continue }
            if sig != instance.parameters.logSignature {
                throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) holds the set of another instance (\(sub)/\(BackupSetLayout.manifest): log signature \(sig), this instance's is \(instance.parameters.logSignature)); it was left as it is: use another directory, or ask explicitly to replace a foreign set")
            }
        }
    }

    /// `writeFullSet` without its own header update (the atomic swap comes first).
    mutating func writeFullSetDeferringRecord(into dir: String) throws {
        let saved = deferRecord
        deferRecord = true
        defer { deferRecord = saved }
        try writeFullSet(into: dir, markerDir: nil)
    }


    // MARK: Incremental

    mutating func incremental() throws {
        let dir = options.directory!
        let dbs = instance.databaseSnapshots
        try requireFullBackup(dbs)
        let setDir = try locateExtendable(dir)
        guard fs.isWritableDirectory(setDir) else {
            throw JetError(.invalidPath, "the set directory \(setDir) is not writable (permission denied, or a read-only file system); nothing was written: make it writable")
        }
        let (oldManifestBytes, m) = try ExtendableSet.read(setDir, fs: fs)
        var manifest = m
        guard manifest.logSignature.signature == instance.parameters.logSignature else {
            throw JetError(.invalidBackupSequence, "the set in \(setDir) is of another instance (its log signature differs); take a full backup into an empty directory")
        }
        var lastHigh = dbs.map { max($0.header.fullPrev!.genHigh, $0.header.incPrev?.genHigh ?? 0) }.max()!
        for d in manifest.databases {
            if let live = dbs.first(where: { $0.name == d.name }), d.signature.signature != live.header.signature {
                throw JetError(.invalidBackupSequence, "database \(d.name) in \(setDir) is not the live one (signatures differ); take a full backup")
            }
        }
        // A run killed after its manifest was committed but before the headers recorded it
        // leaves a set that goes further than the headers say. Its extra generations were
        // not truncated (truncation follows the header update), so the chain continues from
        // the set's end, provided the set passes through the headers' last generation.
        if manifest.lastGeneration > lastHigh && manifest.chain.contains(where: { $0.genHigh == lastHigh }) {
            lastHigh = manifest.lastGeneration
        }
        guard manifest.lastGeneration == lastHigh else {
            throw JetError(.invalidBackupSequence, "the set in \(setDir) ends at log generation \(manifest.lastGeneration), but the instance's last backup ended at \(lastHigh): it is not the set this incremental extends; take a full backup")
        }
        // The set must be whole before it is extended and logs are truncated; this also reads
        // the newest log's creation time, the link the first copied generation must follow.
        let prevCreation = try ExtendableSet.check(manifest, setDir: setDir, fs: fs)
        // What the set holds now: kept by cleanup and put back by this run's undo.
        let keep = Set(manifest.files.map(\.name))
        let keepSums = manifest.sha256sums()
        try BackupSetLayout.cleanLeftovers(setDir, keeping: keep, sums: keepSums, fs: fs)
        let last = try instance.rollLog()
        let gens = Array((lastHigh + 1)...last)
        let onDisk = Set(try instance.archivedGenerationNumbers())
        if let missing = gens.first(where: { !onDisk.contains($0) }) {
            throw JetError(.missingFileToBackup, "log generation \(FileNames.archivedLog(missing)) that the incremental needs is gone (truncated, or deleted by hand); take a new full backup")
        }
        summary.databases = dbs.count
        total = Int64(gens.count) * Int64(instance.parameters.logFileSize)
        try status(.begin(kind: .incremental, totalBytes: total))
        let names = gens.map { FileNames.archivedLog($0) + (options.compressionLevel == nil ? "" : ".zst") }
        let fsCopy = fs
        let restored = UndoOutcome()
        undo.append {
            // If the old manifest and sums could not be put back (a disk that keeps failing),
            // leave exactly what a killed run leaves — its files and the marker — which
            // verify and restore read as the old set plus leftovers, and the next run cleans.
            guard restored.complete else { return }
            for n in names where fsCopy.exists(FilePaths.join(setDir, n)) { try? fsCopy.remove(FilePaths.join(setDir, n)) }
            try? BackupSetLayout.cleanLeftovers(setDir, keeping: keep, sums: keepSums, fs: fsCopy)
        }
        try BackupSetLayout.writeMarker(setDir, names: names, fs: fs)
        let index = manifest.chain.count
        let files = try copyLogs(gens, into: setDir, backupIndex: index, previousCreation: prevCreation)
        let endTime = Clock.microsecondsSinceEpoch()
        let oldSums = (try? fs.readAll(FilePaths.join(setDir, BackupSetLayout.sums))) ?? []
        manifest.chain.append(BackupManifest.Backup(type: "incremental", start: Clock.rfc3339(microseconds: startTime),
                                                    end: Clock.rfc3339(microseconds: endTime), startMicros: startTime,
                                                    endMicros: endTime, genLow: gens.first!, genHigh: last,
                                                    compression: summary.compression))
        manifest.files += files
        manifest.toolVersion = JetBackupVersion.string
        undo.append {
            for (name, bytes) in [(BackupSetLayout.sums, oldSums), (BackupSetLayout.manifest, oldManifestBytes)] {
                let p = FilePaths.join(setDir, name)
                if (try? fsCopy.readAll(p)) == bytes { continue }
                do { try fsCopy.writeAtomically(p, bytes) } catch { restored.complete = false }
            }
        }
        try commitManifest(manifest, in: setDir)
        try? BackupSetLayout.removeMarker(setDir, fs: fs)
        summary.setDirectory = setDir
        summary.generationsCopied = gens.first!...last
        try recordAndTruncate(full: false, genLow: gens.first!, genHigh: last)
    }

    /// An incremental extends a set that holds every database: each needs a full backup.
    func requireFullBackup(_ dbs: [Instance.DatabaseSnapshot]) throws {
        guard !dbs.isEmpty else {
            throw JetError(.missingFullBackup, "the instance has no databases, so there is no full backup to extend; create a database and take a full backup first")
        }
        let without = dbs.filter { $0.header.fullPrev == nil }.map(\.name)
        if without.count == dbs.count {
            throw JetError(.missingFullBackup, "there is no full backup of this instance to extend (the database headers record none); take a full backup first")
        }
        if !without.isEmpty {
            let names = without.joined(separator: ", ")
            throw JetError(.missingFullBackup, "database\(without.count > 1 ? "s" : "") \(names) \(without.count > 1 ? "have" : "has") no full backup (created or attached after the last full backup), so no incremental can cover \(without.count > 1 ? "them" : "it"); take a full backup, which then holds every database")
        }
    }

    /// The set an incremental extends: DIR, or DIR/new of an atomic set.
    func locateExtendable(_ dir: String) throws -> String {
        guard let s = BackupSetLayout.locate(dir, fs: fs), s != FilePaths.join(dir, BackupSetLayout.old) else {
            throw JetError(.invalidBackupSequence, "\(dir) holds no backup set for the incremental to extend (no \(BackupSetLayout.manifest)); take a full backup into it first")
        }
        return s
    }
}

/// Whether an undo step put everything back; a later step reads it.
final class UndoOutcome {
    var complete = true
}

/// The names a run created, shared with its undo step.
final class NameBox {
    var names: [String]
    init(_ n: [String]) { names = n }
}
