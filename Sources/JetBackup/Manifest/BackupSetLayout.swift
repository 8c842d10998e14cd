import JetStore

/// Where a backup set lives in a backup directory, and the names a backup run uses there.
///
/// - a plain set: `DIR/MANIFEST.json` and its files;
/// - an atomic set: `DIR/new/` (the current set), with `DIR/temp/` (being built) and
///   `DIR/old/` (the previous one, only during the swap).
/// A run that writes into DIR first writes `.jetbackup-incomplete` listing what it will
/// add; a directory with that marker and no manifest holds no backup, and the next run
/// removes what the marker lists.
/// A run holds `.jetbackup-lock` in DIR (the directory it was given) while it runs; it is
/// removed at the end, and one left by a killed run is ignored by every reader and reused.
public enum BackupSetLayout {
    public static let manifest = "MANIFEST.json"
    public static let sums = "SHA256SUMS"
    public static let marker = ".jetbackup-incomplete"
    public static let temp = "temp"
    public static let new = "new"
    public static let old = "old"
    public static let lock = ".jetbackup-lock"

    /// The directory holding the set in `dir`: DIR itself, DIR/new, or DIR/old (an atomic
    /// backup killed mid-swap). nil if none holds a manifest.
    public static func locate(_ dir: String, fs: any FileSystem) -> String? {
        for candidate in [dir, FilePaths.join(dir, new), FilePaths.join(dir, old)] {
            let m = FilePaths.join(candidate, manifest)
            if fs.isDirectory(candidate), !fs.isSymlink(candidate), fs.exists(m), !fs.isSymlink(m) { return candidate }
        }
        return nil
    }

    public static func requireSet(_ dir: String, fs: any FileSystem) throws -> String {
        guard fs.isDirectory(dir) else {
            throw JetError(.invalidPath, "backup directory \(dir) does not exist")
        }
        guard let s = locate(dir, fs: fs) else {
            if fs.exists(FilePaths.join(dir, marker)) {
                throw JetError(.missingFileToBackup, "\(dir) holds only the leftovers of an interrupted backup, no backup set; run a new full backup")
            }
            // A run writes its marker before its first file and removes it only once the
            // manifest is in place, so set files without either mean the manifest was lost.
            // (An instance holds such names too, and its parameters file.)
            for candidate in [dir, FilePaths.join(dir, new), FilePaths.join(dir, old)]
            where fs.isDirectory(candidate) && !fs.isSymlink(candidate) && !fs.exists(FilePaths.join(candidate, FileNames.parameters)) {
                let files = ((try? fs.list(candidate)) ?? []).filter(isSetFile)
                if !files.isEmpty && !fs.exists(FilePaths.join(candidate, marker)) {
                    let some = files.prefix(3).joined(separator: ", ") + (files.count > 3 ? ", …" : "")
                    throw JetError(.databaseCorrupted, "\(candidate) holds backup set files (\(some)) but no \(manifest): the manifest was "
                                   + "deleted or lost, and the set cannot be trusted or restored without it; use another backup")
                }
            }
            throw JetError(.invalidBackupSequence, "\(dir) holds no backup set (no \(manifest) in it, in new/ or in old/)")
        }
        return s
    }

    /// A name only a backup set holds: a database image, a copied log generation, the sums.
    static func isSetFile(_ name: String) -> Bool {
        name == sums || name.hasSuffix(FileNames.databaseExtension)
            || FileNames.parseArchivedLog(name) != nil || FileNames.parseArchivedLog(name, compressed: true) != nil
    }

    static func path(_ dir: String, _ name: String) -> String { FilePaths.join(dir, name) }

    /// Writes the marker listing the names a run will add to `dir` (fsynced with the directory).
    static func writeMarker(_ dir: String, names: [String], fs: any FileSystem) throws {
        try fs.writeAtomically(path(dir, marker), Array((names.joined(separator: "\n") + "\n").utf8))
    }

    /// Removes the marker of a run whose set is committed (its manifest names all it wrote).
    /// Not made durable: a marker that a crash brings back beside a manifest names only files
    /// the manifest keeps, excuses nothing that matters, and the next run removes it.
    static func removeMarker(_ dir: String, fs: any FileSystem) throws {
        if fs.exists(path(dir, marker)) {
            try fs.remove(path(dir, marker))
        }
    }

    /// Removes the leftovers of an interrupted run in `dir`: temp
    /// files, and the names its marker lists that the current manifest does not use. With
    /// `sums` (the current manifest's SHA256SUMS), a checksum list the run replaced before it
    /// stopped is put back first, while the marker still excuses it.
    /// `written`: the names the caller itself wrote into the marker (a run undoing its own
    /// work), used when the marker cannot be read back — a read error must not leave the
    /// run's files behind when the run knows them.
    static func cleanLeftovers(_ dir: String, keeping: Set<String>, sums expected: [UInt8]? = nil, written: [String]? = nil,
                               fs: any FileSystem) throws {
        var changed = false
        let mk = path(dir, marker)
        if fs.exists(mk) {
            if let expected, (try? fs.readAll(path(dir, sums))) != expected {
                try fs.writeAtomically(path(dir, sums), expected)
            }
            let listed: [String]
            do {
                listed = String(decoding: try fs.readAll(mk), as: UTF8.self).split(separator: "\n").map(String.init)
            } catch {
                guard let written else { throw error }
                listed = written
            }
            // A file that cannot be removed (an I/O error) does not stop the others from going;
            // the marker stays until all are gone, so the next run finishes the job. The
            // manifest is the exception: while it stands, the files it names must stay too.
            var failure: Error?
            for name in listed where FilePaths.isPlainName(name) && !keeping.contains(name) {
                let p = path(dir, name)
                guard fs.exists(p) && !fs.isDirectory(p) else { continue }
                do {
                    try fs.remove(p)
                } catch {
                    if name == manifest { throw error }
                    if failure == nil { failure = error }
                }
            }
            if let failure {
                try? fs.syncDirectory(dir)
                throw failure
            }
            try fs.remove(mk)
            changed = true
        }
        for name in try fs.list(dir) where name.hasSuffix(".tmp") && (name.hasPrefix(manifest) || name.hasPrefix(sums) || name.hasPrefix(marker)) {
            try fs.remove(path(dir, name)); changed = true
        }
        if changed { try fs.syncDirectory(dir) }
    }
}
