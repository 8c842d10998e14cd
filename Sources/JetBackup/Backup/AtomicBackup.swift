import JetStore

/// An atomic full backup (JET_bitBackupAtomic): the new set is built in `DIR/temp`, then
/// swapped in as `DIR/new`; the previous set moves to `DIR/old` for the moment of the swap.
/// At every instant `new/` or `old/` holds a complete set.
struct AtomicBackup {
    let run: BackupRun
    let dir: String

    var temp: String { FilePaths.join(dir, BackupSetLayout.temp) }
    var new: String { FilePaths.join(dir, BackupSetLayout.new) }
    var old: String { FilePaths.join(dir, BackupSetLayout.old) }

    /// Builds and swaps in the new set; returns its directory and last generation. The
    /// caller records the backup, then calls `finish` to drop the previous set.
    func write() throws -> (setDirectory: String, lastGeneration: UInt32) {
        let fs = run.fs
        let (dir, temp, new, old) = (dir, temp, new, old)
        try checkNotForeign()
        // Leftovers: a killed swap leaves old/ (and maybe no new/): put the previous set back.
        if fs.exists(old) {
            if fs.exists(new) { try fs.removeTree(old) } else { try fs.rename(old, new) }
            try fs.syncDirectory(dir)
        }
        if fs.exists(temp) { try fs.removeTree(temp); try fs.syncDirectory(dir) }
        let unexpected = try fs.list(dir).filter { $0 != BackupSetLayout.new && $0 != BackupSetLayout.lock }
        guard unexpected.isEmpty else {
            throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) holds files that are not an atomic backup set (\(unexpected.prefix(3).joined(separator: ", "))); use an empty directory for an atomic backup")
        }
        run.undo.register { try? fs.removeTree(temp); try? fs.syncDirectory(dir) }
        try fs.createDirectory(temp)
        try fs.syncDirectory(dir)
        let last = try FullBackup(run: run).write(into: temp, marker: false)
        let hadPrevious = fs.exists(new)
        if hadPrevious {
            run.undo.register { if !fs.exists(new) { try? fs.rename(old, new); try? fs.syncDirectory(dir) } }
            try fs.rename(new, old)
            try fs.syncDirectory(dir)
        }
        run.undo.register {
            if fs.exists(new) && !fs.exists(temp) && (!hadPrevious || fs.exists(old)) { try? fs.rename(new, temp); try? fs.syncDirectory(dir) }
        }
        try fs.rename(temp, new)
        try fs.syncDirectory(dir)
        run.summary.setDirectory = new
        return (new, last)
    }

    /// The set an atomic run would replace (new/, or old/ of a killed swap) must be this
    /// instance's, unless the caller asked to replace a foreign one. A set whose manifest
    /// cannot be read at all cannot be restored either; it is replaced.
    func checkNotForeign() throws {
        guard !run.options.replaceForeign else { return }
        let fs = run.fs
        let mine = run.session.logSignature
        for sub in [BackupSetLayout.new, BackupSetLayout.old] {
            let p = FilePaths.join(FilePaths.join(dir, sub), BackupSetLayout.manifest)
            guard fs.exists(p), !fs.isSymlink(p), let bytes = try? fs.readAll(p),
                  let m = try? BackupManifest.decode(bytes, path: p), let sig = m.logSignature.signature else { continue }
            if sig != mine {
                throw JetError(.backupDirectoryNotEmpty, "backup directory \(dir) holds the set of another instance (\(sub)/\(BackupSetLayout.manifest): log signature \(sig), this instance's is \(mine))"
                    + "; it was left as it is: use another directory, or ask explicitly to replace a foreign set")
            }
        }
    }

    /// After the new set is recorded: the previous one goes. A failure here leaves `old/`,
    /// which the next atomic run removes.
    func finish() {
        guard run.fs.exists(old) else { return }
        try? run.fs.removeTree(old)
        try? run.fs.syncDirectory(dir)
    }
}
