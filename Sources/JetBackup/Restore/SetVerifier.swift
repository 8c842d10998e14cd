#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Proves a backup set without trusting any of it: the manifest (its checksum and its
/// fields), SHA256SUMS, every file's size and checksums, one log signature, contiguous
/// generations linked by creation times, every log record, database images that are
/// backup images of this log stream taken at the manifest's replay start, and that replay
/// can start there. `verify` and `restore` go through the same pass (`Pass`): restore adds a
/// sink that writes what was checked and hands each log generation to the engine's recovery,
/// whose replay takes the place of the replay check, so verify proves what restore relies on.
public struct SetVerifier {
    public struct Report: Sendable {
        public var setDirectory = ""
        public var files = 0
        public var databases = 0
        public var pages = 0
        public var generations = 0
        public var bytes: Int64 = 0
        public var records = 0
        /// Whole transactions from the replay start on.
        public var transactions = 0
        /// Log bytes after decompression.
        public var logBytesRaw: Int64 = 0
        /// The size of the newest generation (what the restored instance's log continues with).
        public var logFileSize: Int?
    }

    /// Where a pass hands what it checked (a restore writes it into its target).
    struct Sink {
        /// Opens the writer a database image is copied into while it is checked.
        var image: (BackupManifest.File) throws -> SetFileWriter
        /// Writes a checked, decompressed log generation; returns the SHA-256 of what it wrote.
        var log: (BackupManifest.File, [UInt8]) throws -> String
    }

    let fs: any FileSystem
    /// Bytes per second read from the set at most (`--max-rate`); nil: as fast as it goes.
    public var maxBytesPerSecond: Int64?
    public init(fs: any FileSystem = PosixFileSystem(), maxBytesPerSecond: Int64? = nil) {
        self.fs = fs
        self.maxBytesPerSecond = maxBytesPerSecond
    }

    static func corrupt(_ message: String) -> JetError { JetError(.databaseCorrupted, message) }

    /// Locates the set in `dir` and reads its manifest.
    public func manifest(in dir: String) throws -> (String, BackupManifest) {
        let setDir = try BackupSetLayout.requireSet(dir, fs: fs)
        let path = FilePaths.join(setDir, BackupSetLayout.manifest)
        return (setDir, try BackupManifest.decode(try fs.readAll(path), path: path))
    }

    /// Checks the manifest's structure against SHA256SUMS and the directory's contents.
    func checkStructure(_ m: BackupManifest, setDir: String) throws {
        let sumsPath = FilePaths.join(setDir, BackupSetLayout.sums)
        guard fs.exists(sumsPath), !fs.isSymlink(sumsPath) else {
            throw Self.corrupt("\(sumsPath) is missing; the set is incomplete: use another backup")
        }
        var listed: [String: String] = [:]
        for line in String(decoding: try fs.readAll(sumsPath), as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { throw Self.corrupt("\(sumsPath) has a malformed line '\(line.prefix(80))'") }
            listed[String(parts[1].drop { $0 == " " || $0 == "*" })] = String(parts[0]).lowercased()
        }
        let leftovers = fs.exists(FilePaths.join(setDir, BackupSetLayout.marker))
        for f in m.files {
            guard let sum = listed.removeValue(forKey: f.name) else {
                throw Self.corrupt("\(sumsPath) does not list \(f.name); the set's checksum list is damaged")
            }
            guard sum == f.sha256 else {
                throw Self.corrupt("\(sumsPath) and the manifest disagree on the SHA-256 of \(f.name); one of them is damaged: use another backup")
            }
        }
        if !listed.isEmpty && !leftovers {
            throw Self.corrupt("\(sumsPath) lists files the manifest does not (\(listed.keys.sorted().prefix(3).joined(separator: ", "))); "
                + "the set is damaged")
        }
        // Log or database files in the directory that the set does not name.
        let known = Set(m.files.map(\.name))
        for name in try fs.list(setDir) where !known.contains(name) && !leftovers {
            if let g = FileNames.parseArchivedLog(name) ?? FileNames.parseArchivedLog(name, compressed: true) {
                let p = FilePaths.join(setDir, name)
                var sig: Signature?
                if let bytes = try? fs.readAll(p) {
                    let raw = name.hasSuffix(".zst") ? (try? Zstd.decompress(bytes, maxSize: LogFormat.maximumFileSize, file: p)) : bytes
                    sig = raw.flatMap { r in try? r.withUnsafeBytes { try LogFormat.Header.decode($0, file: p) }.signature }
                }
                if let s = sig, s != m.logSignature.signature {
                    throw JetError(.givenLogFileHasBadSignature, "\(p) is a log of another instance (signature \(s)); it does not belong in this set: "
                        + ""
                        + ""
                        + ""
                        + ""
                        + "remove it")
                }
                throw JetError(.givenLogFileIsNotContiguous, "\(p) (generation \(g)) is in the set's directory but not in its manifest; "
                    + "the set was changed by hand: remove it or use another backup")
            }
            if name.hasSuffix(".edb") {
                throw Self.corrupt("\(FilePaths.join(setDir, name)) is in the set's directory but not in its manifest; the set was changed by hand")
            }
        }
        // The chain: a full, then incrementals, each starting where the last ended.
        guard m.replayFrom.generation == m.chain[0].genLow else {
            throw Self.corrupt("the manifest's replay start (generation \(m.replayFrom.generation)) is not its full backup's first generation \(m.chain[0].genLow)")
        }
        for (i, b) in m.chain.enumerated() {
            guard b.genLow <= b.genHigh else { throw Self.corrupt("backup \(i) of the chain has generations \(b.genLow)-\(b.genHigh)") }
            if i > 0 && b.genLow != m.chain[i - 1].genHigh + 1 {
                throw JetError(.missingLogFile, "the chain has a gap: "
                    + "backup \(i) starts at generation \(b.genLow), the one before ended at \(m.chain[i - 1].genHigh)")
            }
        }
        let gens = m.files.filter { $0.kind == .log }.compactMap(\.generation).sorted()
        var expect = m.chain[0].genLow
        for g in gens {
            guard g == expect else {
                throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(g < expect ? g : expect)) is \(g < expect ? "listed twice" : "missing") in the set"
                    + "; it cannot be restored: use another backup")
            }
            expect += 1
        }
        guard expect == m.lastGeneration + 1 else {
            throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(expect)) is missing from the set (the chain ends at \(m.lastGeneration))")
        }
    }

    /// Reads a file of the set whole, checking presence, type, size and CRC32C (and SHA-256
    /// when `sha` is on). Errors carry the ESE error of the file's kind.
    func readChecked(_ f: BackupManifest.File, setDir: String, sha: Bool) throws -> [UInt8] {
        let p = FilePaths.join(setDir, f.name)
        let kindError: JetError.Code = f.kind == .log ? .logReadVerifyFailure : .readVerifyFailure
        if fs.isSymlink(p) {
            throw JetError(kindError, "\(p) is a symbolic link; a backup set holds plain files only")
        }
        guard fs.exists(p), !fs.isDirectory(p) else {
            if f.kind == .log {
                throw JetError(.missingLogFile, "log generation \(p) is missing from the set; it cannot be restored: use another backup")
            }
            throw JetError(.readVerifyFailure, "database image \(p) is missing from the set; it cannot be restored: use another backup")
        }
        // Opened once: the size and the content are of one file.
        let h = try fs.open(p, .readOnly)
        defer { h.close() }
        let size = try h.size()
        guard size == f.size else {
            throw JetError(kindError, "\(p) is \(size) bytes, the manifest says \(f.size) (truncated or changed); use another backup")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let got = try bytes.withUnsafeMutableBytes { try h.read(at: 0, into: $0) }
        guard got == bytes.count else {
            throw JetError(kindError, "\(p) ended after \(got) of its \(size) bytes while it was read (truncated or changed); use another backup")
        }
        guard CRC32C.checksum(bytes) == f.crc32c else {
            throw JetError(kindError, "\(p) fails its CRC32C (the manifest's checksum); the file is damaged: use another backup")
        }
        if sha {
            let got = bytes.withUnsafeBytes { SHA256Hasher.hex($0) }
            guard got == f.sha256 else { throw JetError(kindError, "\(p) fails its SHA-256; the file is damaged: use another backup") }
        }
        return bytes
    }

    /// The raw bytes of a log file (decompressed and checked against raw size and CRC32C).
    func rawLog(_ f: BackupManifest.File, _ stored: [UInt8], setDir: String) throws -> [UInt8] {
        guard let rawSize = f.rawSize else { return stored }
        let p = FilePaths.join(setDir, f.name)
        let raw = try Zstd.decompress(stored, maxSize: Int(rawSize), file: p)
        guard raw.count == rawSize, CRC32C.checksum(raw) == f.rawCrc32c else {
            throw JetError(.logReadVerifyFailure, "\(p) decompresses to data that does not match the manifest (size or CRC32C); use another backup")
        }
        return raw
    }

    /// Checks one parsed log generation with the engine's chain check (`LogChainFault`, as a
    /// log given in a backup set): signature, number, link, every record. Returns the records.
    func checkLog(_ g: LogReader.Generation, file: String, generation: UInt32, signature: Signature, previous: UInt64?) throws -> Int {
        if let fault = LogChainFault.check(g, expected: generation, signature: signature, previousCreation: previous) {
            throw fault.error(file: file, given: true)
        }
        return g.fragments.count
    }

    /// Streams a database image through fixed buffers, checking size, CRC32C (and SHA-256
    /// with `sha`), the header (page 0, or its shadow: a backup image of this set's log
    /// stream and database, taken at the manifest's replay start), and every page's checksum.
    /// With `copy`, writes what it read there. Returns the pages checked.
    func checkImage(_ f: BackupManifest.File, db: BackupManifest.Database, m: BackupManifest, setDir: String,
                    sha: Bool, copy: UnsafeMutablePointer<SetFileWriter>? = nil, isCancelled: () -> Bool = { false },
                    progress: (Int) -> Void = { _ in }) throws -> Int {
        let file = FilePaths.join(setDir, f.name)
        if fs.isSymlink(file) { throw JetError(.readVerifyFailure, "\(file) is a symbolic link; a backup set holds plain files only") }
        guard fs.exists(file), !fs.isDirectory(file) else {
            throw JetError(.readVerifyFailure, "database image \(file) is missing from the set; it cannot be restored: use another backup")
        }
        let h = try fs.open(file, .readOnly)
        defer { h.close() }
        let ps = m.pageSize
        let size = try h.size()
        guard size == f.size else {
            throw JetError(.readVerifyFailure, "\(file) is \(size) bytes, the manifest says \(f.size) (truncated or changed); use another backup")
        }
        guard size % Int64(ps) == 0, size >= Int64(3 * ps) else {
            throw JetError(.readVerifyFailure, "\(file) is \(size) bytes, not a whole number of \(ps)-byte pages")
        }
        guard size / Int64(ps) == Int64(db.pages) else {
            throw Self.corrupt("the manifest says \(file) has \(db.pages) pages, the image has \(size / Int64(ps)); the manifest is damaged: "
                + "use another backup")
        }
        let chunk = max(ps, (1 << 20) / ps * ps)
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buf.deallocate() }
        var crc: UInt32 = 0
        let hasher = SHA256Hasher()
        var offset: Int64 = 0
        var pg = 0
        var headerOK = false
        while offset < size {
            if isCancelled() { throw Self.interrupted(setDir) }
            let want = Int(min(Int64(chunk), size - offset))
            let got = try h.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<want]))
            guard got == want else { throw JetError(.readVerifyFailure, "\(file) ended early while reading it") }
            let data = UnsafeRawBufferPointer(rebasing: buf[0..<got])
            crc = CRC32C.checksum(data, extending: crc)
            if sha { hasher.update(data) }
            for k in 0..<(got / ps) {
                let page = UnsafeRawBufferPointer(rebasing: data[(k * ps)..<((k + 1) * ps)])
                let v = PageFormat.verify(page, pgno: UInt32(pg))
                if pg <= 1 {
                    if v != .valid { throw PageFormat.error(v, file: file, pgno: UInt32(pg)) }
                    if !headerOK, v == .valid, let hd = DatabaseHeader.decode(page) {
                        guard hd.isBackupImage else {
                            throw JetError(.readVerifyFailure, "\(file) is not marked as a backup image; it was not written by a backup")
                        }
                        guard hd.logSignature == m.logSignature.signature, hd.signature == db.signature.signature else {
                            throw JetError(.givenLogFileHasBadSignature, "\(file) belongs to another instance or database than the set's manifest says")
                        }
                        try checkImageHeader(hd, file: file, db: db, m: m)
                        headerOK = true
                    }
                    if pg == 1 && !headerOK {
                        throw JetError(.readVerifyFailure, "the header of \(file) (page 0 and its shadow) is damaged; use another backup")
                    }
                } else if v != .valid && v != .uninitialized {
                    throw PageFormat.error(v, file: file, pgno: UInt32(pg))
                }
                pg += 1
            }
            try copy?.pointee.append(data)
            offset += Int64(got)
            progress(got)
        }
        guard crc == f.crc32c else {
            throw JetError(.readVerifyFailure, "\(file) fails its CRC32C (the manifest's checksum); the file is damaged: use another backup")
        }
        if sha {
            let got = hasher.finalizeHex()
            guard got == f.sha256 else { throw JetError(.readVerifyFailure, "\(file) fails its SHA-256; the file is damaged: use another backup") }
        }
        return pg
    }

    /// What restore takes from an image's header must agree with the manifest: the page
    /// size, the database id, and the backup it was taken by (format 1 sets included: their
    /// images carry it too). The replay start is where that backup's checkpoint was: replay
    /// from anywhere else would skip changes or apply them to the wrong page versions.
    func checkImageHeader(_ hd: DatabaseHeader, file: String, db: BackupManifest.Database, m: BackupManifest) throws {
        guard Int(hd.pageSize) == m.pageSize, hd.dbid == db.dbid else {
            throw Self.corrupt("\(file) has page size \(hd.pageSize) and database id \(hd.dbid), the manifest says \(m.pageSize) and \(db.dbid); "
                               + "the manifest is damaged: use another backup")
        }
        let start = LogPosition(generation: m.replayFrom.generation, offset: m.replayFrom.offset)
        guard let taken = hd.fullCur, taken.position == start, taken.genLow == m.chain[0].genLow else {
            let at = hd.fullCur.map { "\($0.position)" } ?? "no backup"
            throw Self.corrupt("the manifest's replay start \(start) is not where the backup of \(file) began (\(at)); the manifest is damaged: "
                + "use another backup")
        }
    }

    static func interrupted(_ setDir: String) -> JetError {
        JetError(.termInProgress, "reading the backup set \(setDir) was interrupted")
    }

    /// Locates and reads the manifest, and checks the set's structure: the part of a pass
    /// that reads no file's content.
    func open(_ dir: String) throws -> (String, BackupManifest) {
        let (setDir, m) = try manifest(in: dir)
        try checkStructure(m, setDir: setDir)
        return (setDir, m)
    }

    /// The pass of `verify`, after `open` (`Pass`, with the replay check run on every
    /// generation and every transaction decoded).
    func read(_ m: BackupManifest, setDir: String, isCancelled: () -> Bool = { false },
              progress: (Int64, Int64, String) -> Void = { _, _, _ in }) throws -> Report {
        let pass = Pass(self, m, setDir: setDir)
        try pass.images(sink: nil, isCancelled: isCancelled, progress: progress)
        var replay = ReplayCheck(start: LogPosition(generation: m.replayFrom.generation, offset: m.replayFrom.offset))
        while try pass.nextLog(sink: nil, isCancelled: isCancelled, progress: progress, check: { try replay.feed($0, decode: true) }) != nil {}
        var r = pass.report
        r.transactions = replay.transactions
        return r
    }

    /// `verify DIR`: the pass restore makes, writing nothing, with every transaction decoded.
    public func verify(_ dir: String, progress: (Int64, Int64, String) -> Void = { _, _, _ in }) throws -> Report {
        let (setDir, m) = try open(dir)
        return try read(m, setDir: setDir, progress: progress)
    }
}
