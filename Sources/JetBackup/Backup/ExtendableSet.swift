import JetStore

/// What an incremental proves about the set it extends before it adds to it and truncates
/// the instance's logs: that the set is whole. An incremental into a damaged set would
/// succeed every night while deleting the logs that could repair it, so any damage found
/// here refuses the run (exit 65) before anything is written or truncated.
///
/// Cheap enough for every run (it reads the logs and two pages per image, never a whole
/// image: `verify` does that): the manifest, SHA256SUMS agreeing with it and the directory
/// holding no stray log or image (`SetVerifier.checkStructure`); every listed file present,
/// a plain file, of its listed size; every log's CRC32C; the header of the newest log (the
/// link the next generation must follow); and pages 0-1 of every database image (a backup
/// image of this set's log stream and database). Its cost is reading the set's logs: a set
/// of a 1.8 GiB image and 59 logs of 1 MiB took 40 ms cached, 190 ms cold (README, "Changes").
enum ExtendableSet {
    /// Reads and decodes the set's manifest. A check of the manifest's own integrity
    /// belongs here (every caller that extends a set reads it through this).
    static func read(_ setDir: String, fs: any FileSystem) throws -> (bytes: [UInt8], manifest: BackupManifest) {
        let bytes = try fs.readAll(manifestPath(setDir))
        return (bytes, try decode(bytes, setDir: setDir))
    }

    /// The manifest of the set in `setDir` from its bytes, read by the caller.
    static func decode(_ bytes: [UInt8], setDir: String) throws -> BackupManifest {
        try BackupManifest.decode(bytes, path: manifestPath(setDir))
    }

    static func manifestPath(_ setDir: String) -> String { FilePaths.join(setDir, BackupSetLayout.manifest) }

    /// Checks that the set in `setDir` is whole (see the type's comment); returns the
    /// creation time of its newest log. Reads only.
    static func check(_ m: BackupManifest, setDir: String, fs: any FileSystem) throws -> UInt64? {
        try SetVerifier(fs: fs).checkStructure(m, setDir: setDir)
        let newest = m.files.filter { $0.kind == .log }.max { ($0.generation ?? 0) < ($1.generation ?? 0) }
        var creation: UInt64?
        for f in m.files {
            let p = FilePaths.join(setDir, f.name)
            let isLog = f.kind == .log
            let code: JetError.Code = isLog ? .logReadVerifyFailure : .readVerifyFailure
            let what = isLog ? "log generation" : "database image"
            if fs.isSymlink(p) || (fs.exists(p) && fs.isDirectory(p)) {
                throw JetError(code, "\(what) \(p) is not a plain file; the set was changed by hand and is not extended: take a full backup")
            }
            guard fs.exists(p) else {
                throw JetError(isLog ? .missingLogFile : .readVerifyFailure,
                               "\(what) \(p) is missing from the set, so it cannot be restored and is not extended: take a full backup")
            }
            let h = try fs.open(p, .readOnly)
            defer { h.close() }
            let size = try h.size()
            guard size == f.size else {
                throw JetError(code, "\(p) is \(size) bytes, the manifest says \(f.size) (truncated or changed); "
                    + "the set is damaged and is not extended: take a full backup")
            }
            if isLog {
                guard try crc32c(p, size: size, fs: fs) == f.crc32c else {
                    throw JetError(code, "\(p) fails its CRC32C (the manifest's checksum); the set is damaged and is not extended: "
                        + "take a full backup")
                }
                if f.name == newest?.name {
                    // A stored log's header is its first bytes; a compressed one is read whole.
                    let found = try f.rawSize.map { raw in
                        try Zstd.decompress(try fs.readAll(p), maxSize: Int(raw), file: p).withUnsafeBytes { try LogFormat.Header.decode($0, file: p) }
                    } ?? LogFormat.Header.read(h, path: p)
                    creation = try header(f, found, path: p, m: m).creationTime
                }
            } else if let db = m.databases.first(where: { $0.file == f.name }) {
                try checkImageHeader(h, size: size, db: db, m: m, path: p)
            }
        }
        return creation
    }

    /// CRC32C of a file of `size` bytes, read through a mapping where the file system maps
    /// (`FileSystem.readWhole`: no buffer to fault in, and a log may be up to 1 GiB).
    static func crc32c(_ path: String, size: Int64, fs: any FileSystem) throws -> UInt32 {
        let bytes = try fs.readWhole(path)
        guard Int64(bytes.count) == size else { throw JetError(.logReadVerifyFailure, "\(path) changed size while reading it") }
        return bytes.withUnsafeBytes { CRC32C.checksum($0) }
    }

    /// The header of a log of the set, as found: this set's log stream, the generation its name says.
    static func header(_ f: BackupManifest.File, _ h: LogFormat.Header, path: String, m: BackupManifest) throws -> LogFormat.Header {
        guard h.signature == m.logSignature.signature else {
            throw JetError(.givenLogFileHasBadSignature, "\(path) belongs to another log stream (signature \(h.signature)); "
                + "the set is damaged and is not extended: take a full backup")
        }
        guard h.generation == f.generation else {
            throw JetError(.givenLogFileIsNotContiguous, "\(path) holds generation \(h.generation), the manifest says \(f.generation ?? 0); "
                + "the set is damaged and is not extended: take a full backup")
        }
        return h
    }

    /// Pages 0 and 1 (the header and its shadow) of an image: both pass their checks, and
    /// the header marks a backup image of this set's log stream and of the listed database.
    static func checkImageHeader(_ h: any StorageFile, size: Int64, db: BackupManifest.Database, m: BackupManifest, path: String) throws {
        let ps = m.pageSize
        guard size % Int64(ps) == 0, size >= Int64(3 * ps) else {
            throw JetError(.readVerifyFailure, "\(path) is \(size) bytes, not a whole number of \(ps)-byte pages; "
                + "the set is damaged and is not extended: take a full backup")
        }
        var pages = [UInt8](repeating: 0, count: 2 * ps)
        let got = try pages.withUnsafeMutableBytes { try h.read(at: 0, into: $0) }
        guard got == 2 * ps else { throw JetError(.readVerifyFailure, "\(path) ended early while reading its header") }
        var header: DatabaseHeader?
        try pages.withUnsafeBytes { all in
            for pg in 0..<2 {
                let page = UnsafeRawBufferPointer(rebasing: all[(pg * ps)..<((pg + 1) * ps)])
                let v = PageFormat.verify(page, pgno: UInt32(pg))
                guard v == .valid else {
                    let why = PageFormat.error(v, file: path, pgno: UInt32(pg)).message.split(separator: ";")[0]
                    throw JetError(.readVerifyFailure, "the header of database image \(path) is damaged (\(why)); the set is not extended: "
                        + "take a full backup")
                }
                if header == nil { header = DatabaseHeader.decode(page) }
            }
        }
        guard let hd = header else {
            throw JetError(.readVerifyFailure, "the header of \(path) (page 0 and its shadow) is damaged; the set is not extended: "
                + "take a full backup")
        }
        guard hd.isBackupImage else {
            throw JetError(.readVerifyFailure, "\(path) is not marked as a backup image; the set was changed by hand and is not extended: "
                + "take a full backup")
        }
        guard hd.logSignature == m.logSignature.signature, hd.signature == db.signature.signature else {
            throw JetError(.givenLogFileHasBadSignature, "\(path) belongs to another instance or database than the set's manifest says; "
                + "the set is not extended: take a full backup")
        }
    }
}
