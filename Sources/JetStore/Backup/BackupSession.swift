#if canImport(Glibc)
import Glibc
#endif

/// ESE's external backup API (`JetBeginExternalBackupInstance`, `JetGetAttachInfoInstance`,
/// `JetReadFileInstance`, `JetGetLogInfoInstance`, `JetTruncateLogInstance`,
/// `JetEndExternalBackupInstance`): the engine hands out verified bytes of its own files and
/// the caller writes them wherever it likes. Everything a session returns is plain data —
/// names, numbers, byte buffers, small structs — so a session can be served to another process.
///
/// Life of a session: `Instance.beginBackup` (refusals, a checkpoint for a full backup, the
/// log pinned from the replay start on) → `readDatabase` chunks (full only) → `rollLog` →
/// `readLog` for each generation of `generations(through:)` → `complete` (the backup is
/// recorded in the database headers, then logs it holds are truncated) or `abort` (nothing
/// recorded, nothing truncated). Until one of them, no log the session may hand out is deleted.
public final class BackupSession: @unchecked Sendable {
    public enum Kind: String, Sendable, Codable {
        case full
        case incremental
    }

    /// A database of the instance as the session sees it at its start.
    public struct Database: Sendable, Equatable {
        public var name: String
        /// The file's name in the instance (and in a backup set).
        public var fileName: String
        public var dbid: UInt32
        public var signature: Signature
        public var pageSize: Int
        /// Bytes at the session's start (the file may grow while it is read).
        public var size: Int64
        /// The last full and incremental backups recorded in its header.
        public var lastFull: DatabaseHeader.BackupInfo?
        public var lastIncremental: DatabaseHeader.BackupInfo?
    }

    /// One log generation, read whole and checked (`LogChainFault`), as it is on disk.
    public struct LogFile: Sendable {
        public var generation: UInt32
        public var fileName: String
        public var header: LogFormat.Header
        /// The file's bytes exactly as stored (payloads masked), mapped where it was read.
        public var bytes: FileBytes
        public var records: Int
        /// The scan the check was made from, in the process that read the file (a caller
        /// that needs the records uses it instead of scanning again); nil where the file came
        /// over a connection.
        public var scan: LogReader.Scan? = nil
    }

    /// How often a page that fails its checks is read again before the backup gives up: a
    /// page may be caught in the middle of being written (ESE re-reads, too).
    public static let pageRetries = 16

    public let kind: Kind
    /// Replay of a set made by this session starts here (the checkpoint at its start).
    public let start: LogPosition
    /// Microseconds since the epoch.
    public let startTime: UInt64
    public let logSignature: Signature
    public let databases: [Database]
    /// Incremental: the last generation the previous backup holds (the new one starts after it).
    public let previousEnd: UInt32?
    /// The instance's page size and log generation size.
    public let pageSize: Int
    public let logFileSize: Int

    let instance: Instance
    private let files: [String: DatabaseFile]
    private var ended = false
    private let endLock = Lock()

    init(instance: Instance, kind: Kind, start: LogPosition, previousEnd: UInt32?, databases dbs: [DatabaseFile]) {
        self.instance = instance
        self.kind = kind
        self.start = start
        self.startTime = Clock.microsecondsSinceEpoch()
        self.logSignature = instance.parameters.logSignature
        self.previousEnd = previousEnd
        self.pageSize = instance.parameters.pageSize
        self.logFileSize = instance.parameters.logFileSize
        var files: [String: DatabaseFile] = [:]
        var list: [Database] = []
        for db in dbs.sorted(by: { $0.name < $1.name }) {
            files[db.name] = db
            list.append(Database(name: db.name, fileName: FileNames.database(db.name), dbid: db.header.dbid,
                                 signature: db.header.signature, pageSize: db.pageSize,
                                 size: (try? db.file.size()) ?? 0, lastFull: db.header.fullPrev,
                                 lastIncremental: db.header.incPrev))
        }
        self.files = files
        self.databases = list
    }

    deinit { abort() }

    /// True once the instance began shutting down: the caller stops and aborts.
    public var isInstanceTerminating: Bool { instance.isTerminating }

    /// The generation being written now (for progress estimates).
    public var currentGeneration: UInt32 { instance.currentGeneration }

    /// The first generation this backup copies: the replay start of a full backup, the one
    /// after the previous backup's end for an incremental.
    public var firstGeneration: UInt32 { kind == .full ? start.generation : (previousEnd ?? 0) + 1 }

    // MARK: Database pages

    /// What a full backup writes into the header of each database image: it is a backup
    /// image, of the backup that starts replay at `start`.
    public var imageInfo: DatabaseHeader.BackupInfo {
        DatabaseHeader.BackupInfo(genLow: start.generation, genHigh: start.generation, position: start, time: startTime)
    }

    /// Reads whole pages of database `name` from byte `offset` (a multiple of the page
    /// size) into `buffer` (a multiple of the page size), through the instance's own open
    /// file. Every page is verified (checksum, page number); one that fails is read again
    /// up to `pageRetries` times with backoff, then fails with `JET_errReadVerifyFailure`.
    /// The header page and its shadow come back marked as a backup image. Returns the bytes
    /// read: 0 at the end of the file.
    public func readDatabase(_ name: String, at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard kind == .full else {
            throw JetError(.invalidParameter, "an incremental backup session copies logs only, not database pages")
        }
        try checkOpen()
        guard let db = files[name] else {
            throw JetError(.databaseNotFound, "database '\(name)' is not part of this backup session")
        }
        let ps = db.pageSize
        guard offset >= 0, offset % Int64(ps) == 0, buffer.count >= ps else {
            throw JetError(.invalidParameter, "database reads are whole \(ps)-byte pages at page boundaries")
        }
        let want = buffer.count / ps * ps
        let got = try db.file.read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
        let pages = got / ps
        let first = UInt32(offset / Int64(ps))
        for k in 0..<pages {
            let page = UnsafeMutableRawBufferPointer(rebasing: buffer[(k * ps)..<((k + 1) * ps)])
            let pgno = first + UInt32(k)
            try verify(page, pgno: pgno, db: db)
            if pgno <= PageFormat.shadowPage { try markImage(page, pgno: pgno, db: db) }
        }
        if pages == 0 && offset < Int64(PageFormat.firstDataPage + 1) * Int64(ps) {
            throw JetError(.readVerifyFailure, "\(db.path) holds only \(offset / Int64(ps)) pages; the database is damaged: restore it from a backup")
        }
        return pages * ps
    }

    /// Verifies a page, reading it again while it fails (a write in flight), then gives up.
    private func verify(_ page: UnsafeMutableRawBufferPointer, pgno: UInt32, db: DatabaseFile) throws {
        var verdict = PageFormat.verify(UnsafeRawBufferPointer(page), pgno: pgno)
        var attempt = 0
        while verdict != .valid && verdict != .uninitialized {
            if attempt == Self.pageRetries {
                throw PageFormat.error(verdict, file: db.path, pgno: pgno)
            }
            usleep(UInt32(min(50_000, 500 << min(attempt, 7))))
            attempt += 1
            try checkOpen()
            let n = try db.file.read(at: Int64(pgno) * Int64(page.count), into: page)
            if n < page.count { (page.baseAddress! + n).initializeMemory(as: UInt8.self, repeating: 0, count: page.count - n) }
            verdict = PageFormat.verify(UnsafeRawBufferPointer(page), pgno: pgno)
        }
    }

    /// Marks the header page (and its shadow) as a backup image of this session.
    private func markImage(_ page: UnsafeMutableRawBufferPointer, pgno: UInt32, db: DatabaseFile) throws {
        guard var h = DatabaseHeader.decode(UnsafeRawBufferPointer(page)) else {
            if pgno == PageFormat.shadowPage { return } // a shadow that is not a header: page 0 is what counts
            throw JetError(.readVerifyFailure, "page 0 of \(db.path) is not a database header; the database is damaged")
        }
        h.isBackupImage = true
        h.fullCur = imageInfo
        h.encode(into: page)
        PageFormat.seal(page, pgno: pgno)
    }

    // MARK: Logs

    /// Finishes the current generation (ESE rolls the log at the end of the page copy, so
    /// every change visible in a copied page is in a finished generation). Returns the last
    /// generation the backup copies.
    public func rollLog() throws -> UInt32 {
        try checkOpen()
        return try instance.rollLog()
    }

    /// The generations this backup copies, from `first` (default `firstGeneration`; an
    /// incremental may continue after a set that already goes further than the headers
    /// record) through `last`; each must still be in the instance.
    public func generations(from first: UInt32?, through last: UInt32) throws -> ClosedRange<UInt32> {
        let first = first ?? firstGeneration
        guard first <= last else {
            throw JetError(.invalidParameter, "no log generation to copy: the backup starts at generation \(first), the log ends at \(last)")
        }
        let present = Set(try instance.archivedGenerationNumbers())
        if let missing = (first...last).first(where: { !present.contains($0) }) {
            throw JetError(.missingFileToBackup,
                           "log generation \(FileNames.archivedLog(missing)) that this backup needs is gone from \(instance.path) (truncated, "
                               + "or deleted by hand); take a new full backup")
        }
        return first...last
    }

    /// Reads finished generation `g` and checks it as the chain expects it: signature,
    /// number, every record, and the link to the generation before it — `previousCreation`
    /// when given (the last log of the set an incremental extends), else the previous
    /// generation's header when this backup copies that one too.
    public func readLog(_ g: UInt32, previousCreation: UInt64?) throws -> LogFile {
        try checkOpen()
        let path = instance.generationPath(g)
        // Mapped (a finished generation is never cut while the backup pins it) and checked,
        // not unmasked: the copy is of the file's bytes, and the backup reads only commit
        // times from the payloads (`LogReader.CommitScanner`).
        let bytes = try instance.fs.readWhole(path)
        let parsed = try bytes.withUnsafeBytes { try LogReader.scan($0, path: path) }
        var link = previousCreation
        if link == nil && g > firstGeneration {
            let prevPath = instance.generationPath(g - 1)
            let f = try instance.fs.open(prevPath, .readOnly)
            defer { f.close() }
            link = try LogFormat.Header.read(f, path: prevPath).creationTime
        }
        if let fault = LogChainFault.check(parsed, expected: g, signature: logSignature, previousCreation: link) {
            throw fault.error(file: path, given: false)
        }
        return LogFile(generation: g, fileName: FileNames.archivedLog(g), header: parsed.header, bytes: bytes,
                       records: parsed.fragments.count, scan: parsed)
    }

    // MARK: End

    /// The backup of `generations` is complete and durable where the caller wrote it:
    /// records it in every database header (a logged change, as durable as a commit), then
    /// deletes the logs through its last generation that recovery no longer needs. Returns
    /// the generations deleted. A failure to record throws (nothing changed); a failure to
    /// delete is only an event — the backup itself is good — and returns nil.
    public func complete(generations: ClosedRange<UInt32>) throws -> ClosedRange<UInt32>? {
        try checkOpen()
        let genHigh = generations.upperBound
        try instance.recordBackup(full: kind == .full, DatabaseHeader.BackupInfo(genLow: generations.lowerBound, genHigh: genHigh,
                                                                                 position: start, time: startTime))
        defer { abort() }
        do {
            return try instance.truncateBackedUpLogs(below: genHigh + 1)
        } catch {
            instance.events.log(.logsTruncated, "the backup succeeded but log truncation failed: \(error)", level: .warning)
            return nil
        }
    }

    /// Ends the session without recording anything: the pinned logs are released.
    public func abort() {
        let first = endLock.withLock { () -> Bool in
            defer { ended = true }
            return !ended
        }
        if first { instance.endBackup() }
    }

    private func checkOpen() throws {
        if endLock.withLock({ ended }) {
            throw JetError(.invalidParameter, "the backup session has ended")
        }
        if instance.isTerminating {
            throw JetError(.termInProgress, "the instance is shutting down; the backup stopped and nothing of it was recorded")
        }
    }
}
