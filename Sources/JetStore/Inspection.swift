/// Read-only views of an instance's files: headers (esentutl /mh), log generations (/ml)
/// and a full checksum pass (/k). These read the files directly under the instance lock,
/// without recovery, so they work on a damaged instance too.
public enum Inspection {
    public struct DatabaseInfo: Sendable {
        public var name: String
        public var file: String
        public var header: DatabaseHeader
        public var fileSize: Int64
        public var headerRepairedFromShadow: Bool
    }

    public struct GenerationInfo: Sendable {
        public var generation: UInt32
        public var file: String
        public var size: Int64
        public var created: UInt64
        public var checksumOK: Bool
        public var problem: String?
        public var neededForRecovery: Bool
        public var coveredByBackup: Bool
        /// No file holds this generation (and, with `missingThrough`, the ones after it up to
        /// that one), though older and newer generations are kept.
        public var missing = false
        public var missingThrough: UInt32?
    }

    public struct CheckReport: Sendable {
        public var pagesChecked = 0
        public var pagesBad = 0
        public var pagesUninitialized = 0
        public var generationsChecked = 0
        public var generationsBad = 0
        public var generationsMissing = 0
        public var recordsChecked = 0
        public var problems: [JetError] = []
        public var ok: Bool { problems.isEmpty }
    }

    /// Runs `body` with the instance locked against other processes.
    public static func withLockedInstance<T>(_ path: String, fs: any FileSystem, owner: String, _ body: (InstanceParameters) throws -> T) throws -> T {
        try Instance.checkIsInstance(path, fs: fs)
        let lock = try fs.lock(FilePaths.join(path, FileNames.lock), owner: owner)
        defer { lock.release() }
        if fs.exists(FilePaths.join(path, FileNames.restoreMarker)) {
            throw JetError(.restoreInProgress, "a restore into \(path) is running or was interrupted; "
                + "wait for it, or remove \(path) and restore again")
        }
        let p = try InstanceParameters.load(fs: fs, path: FilePaths.join(path, FileNames.parameters))
        return try body(p)
    }

    public static func databases(_ path: String, fs: any FileSystem) throws -> [DatabaseInfo] {
        var out: [DatabaseInfo] = []
        for name in try fs.list(path) where name.hasSuffix(FileNames.databaseExtension) {
            let p = FilePaths.join(path, name)
            let f = try fs.open(p, .readOnly)
            defer { f.close() }
            let (h, repaired) = try DatabaseFile.readHeader(file: f, path: p, repair: false)
            out.append(DatabaseInfo(name: String(name.dropLast(FileNames.databaseExtension.count)), file: name,
                                    header: h, fileSize: try f.size(), headerRepairedFromShadow: repaired))
        }
        return out
    }

    /// The spare generation files a truncation kept for later rolls (`LogSpares`): how many,
    /// and the bytes they hold on disk.
    public static func spareLogs(_ path: String, fs: any FileSystem) throws -> (count: Int, bytes: Int64) {
        var count = 0, bytes: Int64 = 0
        for name in try fs.list(path) where FileNames.isSpareLog(name) {
            count += 1
            bytes += (try? fs.open(FilePaths.join(path, name), .readOnly).size()) ?? 0
        }
        return (count, bytes)
    }

    public static func checkpoint(_ path: String, fs: any FileSystem) throws -> Checkpoint {
        try CheckpointFile.read(fs: fs, path: FilePaths.join(path, FileNames.checkpoint)).0
    }

    /// Every generation file in the instance, oldest first, each verified; and an entry for
    /// each run of generations missing between the oldest and the newest kept. Logs are only
    /// ever deleted oldest first (truncation, circular logging), so a hole is damage: recovery
    /// or the next incremental backup needs what was there.
    public static func generations(_ path: String, fs: any FileSystem, parameters: InstanceParameters) throws -> [GenerationInfo] {
        let cp = try? checkpoint(path, fs: fs)
        let dbs = (try? databases(path, fs: fs)) ?? []
        var covered: [ClosedRange<UInt32>] = []
        for d in dbs {
            if let f = d.header.fullPrev {
                covered.append(f.genLow...max(f.genLow, d.header.incPrev?.genHigh ?? f.genHigh))
            }
        }
        var files: [(UInt32?, String)] = try fs.list(path).compactMap { n in
            FileNames.parseArchivedLog(n).map { ($0, n) }
        }
        if fs.exists(FilePaths.join(path, FileNames.currentLog)) { files.append((nil, FileNames.currentLog)) }
        var out: [GenerationInfo] = []
        for (named, name) in files {
            let p = FilePaths.join(path, name)
            var info = GenerationInfo(generation: named ?? 0, file: name, size: 0, created: 0, checksumOK: false,
                                      problem: nil, neededForRecovery: false, coveredByBackup: false)
            do {
                let g = try LogReader.read(fs: fs, path: p)
                info.size = Int64(g.bytes.count)
                info.generation = g.header.generation
                info.created = g.header.creationTime
                if let n = named, n != g.header.generation {
                    info.problem = "holds generation \(g.header.generation)"
                } else if g.header.signature != parameters.logSignature {
                    info.problem = "belongs to another instance (log signature differs)"
                } else if case .bad(let o, let reason, _) = g.end, named != nil || !g.endsInTornWrite {
                    info.problem = "\(reason) at offset \(o)"
                } else {
                    info.checksumOK = true
                }
            } catch let e as JetError {
                info.problem = e.message
                info.size = (try? fs.open(p, .readOnly).size()) ?? 0
            }
            info.neededForRecovery = cp.map { info.generation >= $0.position.generation } ?? true
            info.coveredByBackup = covered.contains { $0.contains(info.generation) } && named != nil
            out.append(info)
        }
        // Only generations whose number is certain: a file's name, or the current log's header.
        let present = Set(out.compactMap { g -> UInt32? in
            g.file == FileNames.currentLog ? (g.problem == nil && g.generation > 0 ? g.generation : nil) : FileNames.parseArchivedLog(g.file)
        }).sorted()
        for (a, b) in zip(present, present.dropFirst()) where b > a + 1 {
            let first = a + 1, last = b - 1
            out.append(GenerationInfo(generation: first, file: FileNames.archivedLog(first), size: 0, created: 0, checksumOK: false,
                                      problem: first == last ? "missing" : "missing, and the generations after it through \(last)",
                                      neededForRecovery: cp.map { last >= $0.position.generation } ?? true,
                                      coveredByBackup: covered.contains { $0.contains(first) && $0.contains(last) },
                                      missing: true, missingThrough: first == last ? nil : last))
        }
        return out.sorted { $0.generation < $1.generation }
    }

    /// Verifies every page of every database and every record of every log generation.
    public static func check(_ path: String, fs: any FileSystem, parameters: InstanceParameters) throws -> CheckReport {
        var r = CheckReport()
        for name in try fs.list(path) where name.hasSuffix(FileNames.databaseExtension) {
            let p = FilePaths.join(path, name)
            let f = try fs.open(p, .readOnly)
            defer { f.close() }
            let header: DatabaseHeader
            do {
                header = try DatabaseFile.readHeader(file: f, path: p, repair: false).0
            } catch let e as JetError {
                r.problems.append(e); r.pagesBad += 1
                continue
            }
            let ps = Int(header.pageSize)
            let pages = Int(try f.size()) / ps
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buf.deallocate() }
            var pgno = 0
            while pgno < pages {
                let n = min((1 << 20) / ps, pages - pgno)
                let got = try f.read(at: Int64(pgno) * Int64(ps), into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<(n * ps)]))
                for k in 0..<(got / ps) {
                    let page = UnsafeRawBufferPointer(rebasing: buf[(k * ps)..<((k + 1) * ps)])
                    let no = UInt32(pgno + k)
                    r.pagesChecked += 1
                    switch PageFormat.verify(page, pgno: no) {
                    case .valid: break
                    case .uninitialized where no >= header.pageCount || header.state != .cleanShutdown:
                        r.pagesUninitialized += 1
                    case let v:
                        r.pagesBad += 1
                        r.problems.append(PageFormat.error(v, file: p, pgno: no))
                    }
                }
                pgno += n
            }
        }
        for g in try generations(path, fs: fs, parameters: parameters) {
            // A gap left by an interrupted truncation (generations deleted two at a time):
            // below the checkpoint and inside a recorded backup, so nothing needs them and the
            // next truncation removes what is left around them. `logs` still shows the gap.
            if g.missing && !g.neededForRecovery && g.coveredByBackup { continue }
            if g.missing {
                let last = g.missingThrough ?? g.generation
                r.generationsMissing += Int(last - g.generation + 1)
                let which = last == g.generation ? "log generation \(g.generation) (\(FilePaths.join(path, g.file))) is missing"
                    : "log generations \(g.generation)-\(last) (\(FilePaths.join(path, g.file)) to \(FileNames.archivedLog(last))) are missing"
                let it = last == g.generation ? "it" : "them"
                let need = g.neededForRecovery ? "crash recovery needs \(it): put \(it) back, or restore the instance from a backup"
                    : "the next incremental backup needs \(it): put \(it) back, or take a new full backup"
                r.problems.append(JetError(.missingLogFile, "\(which) between the generations kept; \(need)"))
                continue
            }
            r.generationsChecked += 1
            if !g.checksumOK {
                r.generationsBad += 1
                r.problems.append(JetError(.logReadVerifyFailure, "log generation \(FilePaths.join(path, g.file)) is damaged: "
                    + "\(g.problem ?? "unknown"); restore from a backup"))
            }
        }
        return r
    }
}
