import JetStore

/// An incremental backup (JET_bitBackupIncremental): the log generations since the last
/// backup are added to the set in the directory, and the manifest is replaced by one whose
/// chain ends with this backup. The caller records the backup in the instance.
struct IncrementalBackup {
    let run: BackupRun
    let dir: String

    /// Extends the set; returns its directory and the generations added.
    func write() throws -> (setDirectory: String, generations: ClosedRange<UInt32>) {
        let fs = run.fs
        let session = run.session
        let setDir = try locateExtendable()
        guard fs.isWritableDirectory(setDir) else {
            throw JetError(.invalidPath, "the set directory \(setDir) is not writable (permission denied, or a read-only file system); "
                + "nothing was written: make it writable")
        }
        // The manifest as it is now, under the destination's lock: the prefetch's check (run
        // while the instance opened) stands only for these very bytes.
        let oldManifestBytes = try fs.readAll(ExtendableSet.manifestPath(setDir))
        let prefetched = run.options.setPrefetch?.result(setDir: setDir, manifestBytes: oldManifestBytes)
        var manifest = try prefetched?.manifest ?? ExtendableSet.decode(oldManifestBytes, setDir: setDir)
        guard manifest.logSignature.signature == session.logSignature else {
            throw JetError(.invalidBackupSequence, "the set in \(setDir) is of another instance (its log signature differs); "
                + "take a full backup into an empty directory")
        }
        for d in manifest.databases {
            if let live = session.databases.first(where: { $0.name == d.name }), d.signature.signature != live.signature {
                throw JetError(.invalidBackupSequence, "database \(d.name) in \(setDir) is not the live one (signatures differ); take a full backup")
            }
        }
        var lastHigh = session.previousEnd ?? 0
        // A run killed after its manifest was committed but before the headers recorded it
        // leaves a set that goes further than the headers say. Its extra generations were
        // not truncated (truncation follows the header update), so the chain continues from
        // the set's end, provided the set passes through the headers' last generation.
        if manifest.lastGeneration > lastHigh && manifest.chain.contains(where: { $0.genHigh == lastHigh }) {
            lastHigh = manifest.lastGeneration
        }
        guard manifest.lastGeneration == lastHigh else {
            throw JetError(.invalidBackupSequence, "the set in \(setDir) ends at log generation \(manifest.lastGeneration), "
                + "but the instance's last backup ended at \(lastHigh): it is not the set this incremental extends; take a full backup")
        }
        // The set must be whole before it is extended and logs are truncated; this also reads
        // the newest log's creation time, the link the first copied generation must follow.
        let prevCreation: UInt64?
        if let prefetched {
            prevCreation = prefetched.previousCreation
        } else {
            prevCreation = try ExtendableSet.check(manifest, setDir: setDir, fs: fs)
        }
        // What the set holds now: kept by cleanup and put back by this run's undo.
        let keep = Set(manifest.files.map(\.name))
        let keepSums = manifest.sha256sums()
        try BackupSetLayout.cleanLeftovers(setDir, keeping: keep, sums: keepSums, fs: fs)
        let last = try session.rollLog()
        let gens = try session.generations(from: lastHigh + 1, through: last)
        run.summary.databases = session.databases.count
        try run.begin(.incremental, totalBytes: Int64(gens.count) * Int64(session.logFileSize))
        // One undo step: the old manifest back first (it names only what the set held), then
        // everything the marker lists that the old set does not hold. If the manifest cannot
        // be put back (a disk that keeps failing), everything stays as a killed run leaves
        // it — the new manifest names only complete files — and the next run cleans up.
        let written = gens.map { FileNames.archivedLog($0) + run.logSuffix }
        run.undo.register {
            let p = FilePaths.join(setDir, BackupSetLayout.manifest)
            if (try? fs.readAll(p)) != oldManifestBytes {
                do { try fs.writeAtomically(p, oldManifestBytes) } catch { return }
            }
            try? BackupSetLayout.cleanLeftovers(setDir, keeping: keep, sums: keepSums, written: written, fs: fs)
        }
        try BackupSetLayout.writeMarker(setDir, names: written, fs: fs)
        let files = try run.copyLogs(gens, into: setDir, backupIndex: manifest.chain.count, previousCreation: prevCreation)
        manifest.chain.append(run.chainEntry(.incremental, genLow: gens.lowerBound, genHigh: last,
                                             previous: manifest.chain.last?.lastCommitMicros))
        manifest.files += files
        manifest.toolVersion = JetBackupVersion.string
        try run.commitManifest(manifest, in: setDir)
        run.summary.setDirectory = setDir
        run.summary.generationsCopied = gens
        return (setDir, gens)
    }

    /// The set an incremental extends: DIR, or DIR/new of an atomic set.
    func locateExtendable() throws -> String {
        guard let s = Self.extendable(in: dir, fs: run.fs) else {
            throw JetError(.invalidBackupSequence, "\(dir) holds no backup set for the incremental to extend (no \(BackupSetLayout.manifest)); "
                + "take a full backup into it first")
        }
        return s
    }

    /// The set in `dir` an incremental would extend, if there is one (never DIR/old of an atomic set).
    static func extendable(in dir: String, fs: any FileSystem) -> String? {
        guard let s = BackupSetLayout.locate(dir, fs: fs), s != FilePaths.join(dir, BackupSetLayout.old) else { return nil }
        return s
    }
}
