#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// An instance: a directory with its parameters, log, checkpoint and attached databases,
/// owned by one process at a time (flock on `LOCK`).
///
/// Threads may call `commit`, `get` and `scan` concurrently: tree work runs under one
/// engine lock, and committers share log fsyncs (group commit) outside it.
public final class Instance: @unchecked Sendable {
    public enum State: Sendable, Equatable { case initializing, running, terminating, unavailable, closed }
    public enum AccessMode: Sendable { case readWrite, readOnly }

    public let path: String
    public let fs: any FileSystem
    public private(set) var parameters: InstanceParameters
    public let events: EventLog
    public let mode: AccessMode
    private let lockHandle: any FileLock

    /// The engine lock: databases, cache, trees, checkpoint, state.
    let engine = Condition()
    var databases: [UInt16: DatabaseFile] = [:]
    var byName: [String: UInt16] = [:]
    var cache: PageCache!
    var log: LogWriter?
    /// Generation files kept for the log's rolls (made with `log`).
    var logSpares: LogSpares?
    /// Copies of pages before they are written in place (torn-page repair); nil without a
    /// log (nothing to redo with) and while restoring (a restore interrupted is started over).
    var doublewrite: Doublewrite?
    /// Starts the databases' write-back on another thread during an epoch (see the type).
    let writeback = WritebackBehind()
    /// The commit time of the last transaction logged or replayed: commit times never go back.
    var lastCommitTime: UInt64 = 0
    var checkpoint: Checkpoint
    var stateValue: State = .initializing
    var fatal: JetError?
    /// A backup holds this; generations at or above `pinnedGeneration` are kept.
    var backupRunning = false
    /// A full backup's session is open: it reads the database files page by page.
    var databaseCopyRunning = false
    /// Serves other processes while the instance is open read-write (see `open`).
    public internal(set) var controlServer: ControlServer?
    var pinnedGeneration: UInt32?
    /// Set when recovery had to repair something (a checkpoint copy, a header from its shadow).
    public internal(set) var repairs: [String] = []
    /// What recovery did at open.
    public internal(set) var recoveryReport = RecoveryReport()

    public struct RecoveryReport: Sendable {
        public var transactionsReplayed = 0
        public var generationsRead = 0
        public var tornTailCut = false
        public var startPosition = LogPosition.zero
        public var endPosition = LogPosition.zero
        /// Pages found torn (or older than their copy) and put back from the doublewrite file.
        public var pagesRepaired = 0
        /// The last transaction replayed: its commit time and where it ends in the log.
        public var lastCommitTime: UInt64?
        public var lastCommitEnd: LogPosition?
        /// Where `stopAt` stopped replay; the log after it was discarded.
        public var stoppedAt: LogPosition?
        /// Batches of redo applied (`RedoBatch`).
        public var redoBatches = 0
    }

    /// Where recovery stops replaying (point-in-time restore): after the last transaction
    /// committed at or before a time (µs since the epoch, the commit times the log carries), or
    /// after the last one that ends in a generation. The log after that point is discarded.
    public enum RecoveryStop: Sendable, Equatable {
        case time(UInt64)
        case generation(UInt32)
    }

    public var state: State { engine.withLock { stateValue } }

    // MARK: Creating

    /// Creates a new instance in `path` (created if missing; must be empty otherwise).
    public static func create(at path: String, parameters input: InstanceParameters, fs: any FileSystem = PosixFileSystem()) throws {
        var p = input
        try InstanceParameters.checkPageSize(p.pageSize)
        try InstanceParameters.checkLogFileSize(p.logFileSize)
        if fs.exists(path) {
            guard fs.isDirectory(path) else { throw JetError(.invalidPath, "\(path) exists and is not a directory") }
            if fs.exists(FilePaths.join(path, FileNames.parameters)) {
                throw JetError(.invalidPath, "\(path) is already an instance; use it, or choose another directory")
            }
            guard try fs.list(path).isEmpty else {
                throw JetError(.invalidPath, "\(path) is not empty; an instance is created in a new or empty directory")
            }
        } else {
            let parent = FilePaths.directory(of: path)
            guard fs.isDirectory(parent) else {
                throw JetError(.invalidPath, "\(parent) does not exist; create it first")
            }
            try fs.createDirectory(path)
            try fs.syncDirectory(parent)
        }
        let sig = Signature.make()
        p.logSignatureRandom = sig.random
        p.logSignatureTime = sig.time
        p.format = "jetbackup-instance"
        p.formatVersion = 1
        if p.loggingEnabled {
            let header = LogFormat.Header(generation: 1, signature: sig, creationTime: Clock.microsecondsSinceEpoch(),
                                          previousCreationTime: 0, fileSize: UInt32(p.logFileSize))
            let f = try LogWriter.createGeneration(fs: fs, path: FilePaths.join(path, FileNames.currentLog), header: header)
            f.close()
            try CheckpointFile.write(fs: fs, path: FilePaths.join(path, FileNames.checkpoint),
                                     Checkpoint(sequence: 1, logSignature: sig, position: LogPosition(generation: 1, offset: UInt32(LogFormat.headerSize)),
                                                time: Clock.microsecondsSinceEpoch()))
        }
        // instance.json last: its presence is what makes the directory an instance.
        try p.save(fs: fs, path: FilePaths.join(path, FileNames.parameters))
        EventLog(fs: fs, path: FilePaths.join(path, FileNames.events))
            .log(.instanceStart, "instance created", [("pageSize", .int(Int64(p.pageSize))), ("logging", .bool(p.loggingEnabled))])
    }

    /// Changes parameters of an instance that is not open elsewhere (`config KEY VALUE`).
    public static func configure(at path: String, fs: any FileSystem = PosixFileSystem(), owner: String,
                                 _ change: (inout InstanceParameters) throws -> Void) throws -> InstanceParameters {
        try checkIsInstance(path, fs: fs)
        let lock = try fs.lock(FilePaths.join(path, FileNames.lock), owner: owner)
        defer { lock.release() }
        let file = FilePaths.join(path, FileNames.parameters)
        var p = try InstanceParameters.load(fs: fs, path: file)
        try change(&p)
        try p.save(fs: fs, path: file)
        return p
    }

    /// Reads the parameters without opening (no lock needed for a read of a whole small file).
    public static func readParameters(at path: String, fs: any FileSystem = PosixFileSystem()) throws -> InstanceParameters {
        try checkIsInstance(path, fs: fs)
        return try InstanceParameters.load(fs: fs, path: FilePaths.join(path, FileNames.parameters))
    }

    /// Throws unless `path` is an instance. The messages say what `path` is; the tool above adds
    /// how to make one, which the engine does not know.
    static func checkIsInstance(_ path: String, fs: any FileSystem) throws {
        // `exists` cannot tell "not there" from "not allowed to look": another user's 0700
        // instance would read as "no instance.json". Listing can, and opening lists anyway.
        do {
            _ = try fs.list(path)
        } catch let e as JetError where e.code == .permissionDenied {
            throw JetError(.permissionDenied, "permission denied on \(path): "
                + "the instance belongs to another user or its mode does not let you read it; run as its owner, or change its permissions")
        } catch {
            // Not there or not a directory: said below.
        }
        guard fs.isDirectory(path) else {
            if fs.exists(path) { throw JetError(.fileNotFound, "\(path) is not an instance (it is not a directory)") }
            throw JetError(.fileNotFound, "\(path) is not an instance directory (it does not exist)")
        }
        if fs.exists(FilePaths.join(path, FileNames.restoreMarker)) && !fs.exists(FilePaths.join(path, FileNames.parameters)) {
            throw JetError(.restoreInProgress, "a restore into \(path) is running or was interrupted; "
                + "wait for it, or remove \(path) and restore again")
        }
        guard fs.exists(FilePaths.join(path, FileNames.parameters)) else {
            throw JetError(.fileNotFound, "\(path) is not an instance (no \(FileNames.parameters))")
        }
    }

    // MARK: Opening

    /// Opens an instance: takes the lock, attaches databases, runs crash recovery.
    /// `owner` is written to `LOCK` so another process's error can name us. Recovery polls
    /// `isCancelled` between records and stops with `JET_errTermInProgress` when it returns
    /// true; nothing is lost by that (the checkpoint has not moved: the next open replays again).
    /// `stopAt` (only with `restoring`) replays the log only up to that point and discards the rest.
    /// `logs` (only with `restoring`) hands recovery the generations to replay as the restore
    /// reads them (`LogFeed`), instead of reading them from `path`.
    ///
    /// Opened read-write (on the real file system, not for a restore), the instance serves
    /// other processes of its user on `control.sock` (`ControlServer`: backups, and commands
    /// of the tool that registered a handler) until it is closed; `serveControl: false` opts out.
    public static func open(at path: String, fs: any FileSystem = PosixFileSystem(), mode: AccessMode = .readWrite,
                            owner: String, restoring: Bool = false, stopAt: RecoveryStop? = nil, logs: LogFeed? = nil,
                            serveControl: Bool = true,
                            controlOptions: ControlServer.Options = ControlServer.Options(),
                            isCancelled: () -> Bool = { false }) throws -> Instance {
        if stopAt != nil && !restoring {
            throw JetError(.invalidParameter, "replaying the log only up to a point discards the commits after it, so it is done only when opening a restored instance")
        }
        if logs != nil && !restoring {
            throw JetError(.invalidParameter, "log generations are handed to recovery only when opening a restored instance")
        }
        try checkIsInstance(path, fs: fs)
        let lock = try fs.lock(FilePaths.join(path, FileNames.lock), owner: owner)
        do {
            if !restoring && fs.exists(FilePaths.join(path, FileNames.restoreMarker)) {
                throw JetError(.restoreInProgress, "a restore into \(path) is running or was interrupted; "
                    + "wait for it, or remove \(path) and restore again")
            }
            let params = try InstanceParameters.load(fs: fs, path: FilePaths.join(path, FileNames.parameters))
            let inst = Instance(path: path, fs: fs, parameters: params, mode: mode, lock: lock)
            try inst.start(restoring: restoring, stopAt: stopAt, logs: logs, isCancelled: isCancelled)
            if mode == .readWrite && serveControl && !restoring && fs is PosixFileSystem {
                do {
                    inst.controlServer = try ControlServer(instance: inst, options: controlOptions)
                } catch {
                    // The instance works without it; only other processes cannot reach it.
                    inst.events.log(.controlRefused, "the control socket could not be opened: \(error)", level: .warning)
                }
            }
            return inst
        } catch {
            lock.release()
            throw error
        }
    }

    private init(path: String, fs: any FileSystem, parameters: InstanceParameters, mode: AccessMode, lock: any FileLock) {
        self.path = path
        self.fs = fs
        self.parameters = parameters
        self.mode = mode
        self.lockHandle = lock
        self.events = EventLog(fs: fs, path: FilePaths.join(path, FileNames.events))
        self.checkpoint = Checkpoint(sequence: 0, logSignature: parameters.logSignature, position: .zero, time: 0)
    }

    func file(_ name: String) -> String { FilePaths.join(path, name) }

    private func start(restoring: Bool, stopAt: RecoveryStop?, logs: LogFeed?, isCancelled: () -> Bool) throws {
        try attachDatabases(restoring: restoring)
        let pageSize = parameters.pageSize
        cache = PageCache(capacity: parameters.cacheSize / pageSize, pageSize: pageSize,
                          database: { [unowned self] dbid in try self.database(dbid) },
                          writeBack: { [unowned self] frames in try self.writePages(frames) })
        engine.lock()
        defer { engine.unlock() }
        if parameters.loggingEnabled && !restoring {
            doublewrite = Doublewrite(fs: fs, path: file(FileNames.doublewrite), pageSize: pageSize,
                                      capacity: parameters.effectiveDoublewriteSize)
            try repairTornPages()
        }
        if parameters.loggingEnabled {
            let (cp, damaged) = try CheckpointFile.read(fs: fs, path: file(FileNames.checkpoint))
            guard cp.logSignature == parameters.logSignature else {
                throw JetError(.badLogSignature, "the checkpoint \(file(FileNames.checkpoint)) belongs to another instance's log; "
                    + "restore this instance from a backup")
            }
            checkpoint = cp
            if damaged > 0 {
                try CheckpointFile.write(fs: fs, path: file(FileNames.checkpoint), cp)
                repairs.append("one copy of \(FileNames.checkpoint) was damaged and was rewritten from the other")
                events.log(.recoveryStart, "a damaged copy of the checkpoint was repaired", [("file", .string(FileNames.checkpoint))], level: .warning)
            }
            try recover(stopAt: stopAt, feed: logs, isCancelled: isCancelled)
        } else {
            for db in databases.values where db.header.state == .dirtyShutdown {
                throw JetError(.databaseDirtyShutdown,
                               "\(db.path) was not shut down cleanly and the instance runs without a log (logging off), so it cannot be recovered; "
                                   + "restore it from a backup")
            }
        }
        if mode == .readWrite {
            for db in databases.values {
                db.header.state = .dirtyShutdown
                db.header.genMin = checkpoint.position.generation
                db.header.genMax = log?.currentGeneration ?? 0
                try writeHeaderDirectly(db)
            }
        }
        stateValue = .running
    }

    private func attachDatabases(restoring: Bool) throws {
        for name in try fs.list(path) {
            guard let stem = FileNames.parseDatabase(name) else { continue }
            let p = file(name)
            if fs.isSymlink(p) {
                throw JetError(.invalidDatabase, "\(p) is a symbolic link; an instance's databases must be plain files")
            }
            let f = try fs.open(p, mode == .readWrite || parameters.loggingEnabled ? .readWrite : .readOnly)
            let (header, repaired) = try DatabaseFile.readHeader(file: f, path: p, repair: true)
            if repaired {
                repairs.append("the header of \(name) was damaged and was rewritten from its shadow")
                events.log(.recoveryStart, "database header repaired from its shadow", [("database", .string(stem))], level: .warning)
            }
            if header.isBackupImage && !restoring {
                throw JetError(.softRecoveryOnBackupDatabase, "\(p) is a backup image, not a live database; "
                    + "restore the backup set it belongs to instead")
            }
            guard header.logSignature == parameters.logSignature else {
                throw JetError(.badLogSignature, "\(p) belongs to another instance (its log signature differs); move it out of \(path)")
            }
            guard Int(header.pageSize) == parameters.pageSize else {
                throw JetError(.invalidDatabase, "\(p) has page size \(header.pageSize), the instance \(parameters.pageSize)")
            }
            let dbid = UInt16(truncatingIfNeeded: header.dbid)
            if let other = databases[dbid] {
                throw JetError(.invalidDatabase, "\(p) and \(other.path) have the same database id \(dbid); one of them was copied in by hand")
            }
            let db = DatabaseFile(name: stem, path: p, file: f, header: header)
            databases[dbid] = db
            byName[stem] = dbid
        }
    }

    func database(_ dbid: UInt16) throws -> DatabaseFile {
        guard let db = databases[dbid] else {
            throw JetError(.databaseNotFound, "database id \(dbid) is not attached to \(path)")
        }
        return db
    }

    func database(named name: String) throws -> DatabaseFile {
        guard let id = byName[name], let db = databases[id] else {
            throw JetError(.databaseNotFound, "no database '\(name)' in \(path)")
        }
        return db
    }

    /// Writes dirty pages back: the log first (write-ahead rule), then a copy of each page not
    /// yet copied in this doublewrite epoch (fsynced), then the pages in place. Not fsynced:
    /// a checkpoint, or the next epoch's start, makes them durable.
    func writePages(_ frames: [PageFrame]) throws {
        guard !frames.isEmpty else { return }
        if let log, let end = frames.map(\.lastLoggedEnd).max(), end > 0 {
            try log.waitDurable(LogPosition(rawValue: end))
        }
        for f in frames { PageFormat.seal(f.buffer, pgno: f.pgno) }
        if frames.allSatisfy({ $0.pgno == PageFormat.headerPage }) {
            // Only headers (a backup's record, a clean shutdown's checkpoint): each protects
            // itself, page 0 then its shadow with an fsync between (a crash tears at most one,
            // and the log brings back whichever is read). Through the doublewrite file they
            // would open an epoch — its start, the batch and the next epoch's start, three
            // fsyncs — for pages that need none of it.
            for f in frames.sorted(by: { $0.key < $1.key }) {
                try database(f.dbid).writePage(f.pgno, f.buffer, syncBetween: true, sealed: true)
                doublewrite?.forget(f.key)
            }
            return
        }
        var repeats = 0 // pages of this batch with a copy in the epoch already
        if let dw = doublewrite {
            // A split's new page gets a copy even if it has one of this epoch already: the
            // pages made from it wait on this version (`PageCache.splitMoved`).
            var fresh = frames.filter { dw.needsCopy($0) || $0.needsFreshCopy }
            repeats = frames.count - fresh.count
            if !fresh.isEmpty && dw.isFull(adding: fresh.count) {
                try syncDatabases()
                try dw.startEpoch()
                fresh = frames
                repeats = 0 // the batch opens the new epoch: every page gets a copy
            }
            if !fresh.isEmpty { try dw.write(fresh) }
        }
        for f in frames { f.needsFreshCopy = false }
        for f in frames.sorted(by: { $0.key < $1.key }) {
            try database(f.dbid).writePage(f.pgno, f.buffer, sealed: true)
        }
        if let dw = doublewrite, writeback.shouldStart(epoch: dw.epoch, written: frames.count, repeated: repeats, fill: dw.fill) {
            writeback.request(databases.keys.sorted().compactMap { databases[$0]?.file })
        }
    }

    /// fsyncs every database written since its last fsync (one not written needs none: all it
    /// holds is durable already).
    func syncDatabases() throws {
        for db in databases.values where db.unsynced { try db.sync() }
    }

    /// Before redo: every page copy of the doublewrite file's current epoch whose page in place
    /// is torn (fails its checks) or older goes back in place; then, if the epoch held any
    /// copy, a new epoch starts, so no copy of this one is put back after pages change again.
    /// An epoch without copies (a clean shutdown leaves one) has nothing to put back: the
    /// first batch this run writes starts the next epoch (`Doublewrite.write`), so a command
    /// that writes no page back does not write and fsync the file at open. See `Doublewrite`
    /// for why this leaves no page torn and none older than the checkpoint.
    func repairTornPages() throws {
        guard let dw = doublewrite else { return }
        var touched = Set<UInt16>()
        var copies = 0
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: parameters.pageSize, alignment: 64)
        defer { page.deallocate() }
        try dw.scan { copy in
            copies += 1
            guard let db = databases[copy.dbid] else { return }
            let n = try db.file.read(at: Int64(copy.pgno) * Int64(db.pageSize), into: page)
            if n < db.pageSize { (page.baseAddress! + n).initializeMemory(as: UInt8.self, repeating: 0, count: db.pageSize - n) }
            let inPlace = PageFormat.verify(UnsafeRawBufferPointer(page), pgno: copy.pgno)
            guard inPlace != .valid || page.u64(PageFormat.dbtimeOffset) < copy.dbtime else { return }
            guard try dw.read(copy, into: page) else { return }
            try db.writePage(copy.pgno, page)
            if copy.pgno == PageFormat.headerPage, let h = DatabaseHeader.decode(UnsafeRawBufferPointer(page)) {
                db.header = h
            }
            touched.insert(copy.dbid)
            recoveryReport.pagesRepaired += 1
            if inPlace != .valid {
                events.log(.recoveryStart, "a page torn by a crash was put back from the doublewrite file",
                           [("database", .string(db.name)), ("page", .int(Int64(copy.pgno)))], level: .warning)
            }
        }
        for dbid in touched.sorted() { try databases[dbid]?.sync() }
        if copies > 0 { try dw.startEpoch() }
    }

    /// Writes the in-memory header to pages 0 and 1 directly (through the cached page 0).
    func writeHeaderDirectly(_ db: DatabaseFile) throws {
        let f = try cache.fetch(db.dbid, PageFormat.headerPage)
        defer { cache.endOperation() }
        try db.writeHeaderDirectly(f.buffer)
        doublewrite?.forget(f.key)
        f.dirty = false
    }

    // MARK: State checks

    /// Throws unless the instance takes work. Called under the engine lock.
    func checkUsable(writing: Bool) throws {
        if let f = fatal {
            throw JetError(.instanceUnavailable, "the instance stopped after an earlier error (\(f.code.name): \(f.message)); "
                + "close and reopen it to recover")
        }
        if let f = log?.failed {
            fatal = f
            stateValue = .unavailable
            throw JetError(.instanceUnavailable, "the log could not be written (\(f.message)); close and reopen the instance to recover")
        }
        switch stateValue {
        case .running: break
        case .initializing: throw JetError(.backupNotAllowedYet, "the instance is still starting")
        case .terminating: throw JetError(.termInProgress, "the instance is shutting down")
        case .unavailable: throw JetError(.instanceUnavailable, "the instance stopped after an earlier error; reopen it")
        case .closed: throw JetError(.instanceUnavailable, "the instance is closed")
        }
        if writing && mode == .readOnly {
            throw JetError(.invalidParameter, "the instance was opened read-only")
        }
    }

    /// Marks the instance unusable after an error that left memory out of step with disk.
    func poison(_ error: Error) {
        let e = (error as? JetError) ?? JetError(.diskIO, "\(error)")
        if fatal == nil { fatal = e }
        stateValue = .unavailable
        cache.abandonTransaction()
        cache.endOperation()
    }

    // MARK: Databases

    public var databaseNames: [String] { engine.withLock { byName.keys.sorted() } }

    /// Creates and attaches a database (its creation is logged, so recovery and restore
    /// recreate it if the file is missing).
    public func createDatabase(_ name: String) throws {
        guard FileNames.isValidDatabaseName(name) else {
            throw JetError(.invalidParameter, "'\(name)' is not a valid database name: use 1 to 64 letters, digits, '_' or '-'")
        }
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: true)
        guard byName[name] == nil, !fs.exists(file(FileNames.database(name))) else {
            throw JetError(.databaseDuplicate, "database '\(name)' already exists in \(path)")
        }
        let dbid = (databases.keys.max() ?? 0) + 1
        let sig = Signature.make()
        if let log {
            var b = LogPayloadBuilder(commitTime: nextCommitTime())
            b.createDatabase(dbid: dbid, pageSize: UInt32(parameters.pageSize), signature: sig, name: name)
            let (_, end) = try log.append(b.w.bytes)
            try log.waitDurable(end)
        }
        let db = try createDatabaseFile(name: name, dbid: dbid, signature: sig)
        db.header.state = .dirtyShutdown
        try writeHeaderDirectly(db)
        events.log(.instanceStart, "database created", [("database", .string(name))])
    }

    /// Writes a new empty database file (header, shadow, empty root leaf), fsynced, and
    /// attaches it. Deterministic for a given name, id and signature: recovery recreates
    /// the same file from the log record.
    func createDatabaseFile(name: String, dbid: UInt16, signature: Signature) throws -> DatabaseFile {
        let p = file(FileNames.database(name))
        if fs.exists(p) { try fs.remove(p) }
        let f = try fs.open(p, .createNew)
        var header = DatabaseHeader(pageSize: UInt32(parameters.pageSize), dbid: UInt32(dbid), name: name,
                                    signature: signature, logSignature: parameters.logSignature)
        header.state = .justCreated
        let db = DatabaseFile(name: name, path: p, file: f, header: header)
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: parameters.pageSize, alignment: 64)
        defer { page.deallocate() }
        do {
            page.initializeMemory(as: UInt8.self, repeating: 0)
            page[PageFormat.typeOffset] = PageFormat.PageType.leaf.rawValue
            page.setU16(PageFormat.cellStartOffset, UInt16(parameters.pageSize))
            try db.writePage(PageFormat.firstDataPage, page)
            page.initializeMemory(as: UInt8.self, repeating: 0)
            try db.writeHeaderDirectly(page)
            try fs.syncDirectory(path)
        } catch {
            f.close()
            try? fs.remove(p)
            throw error
        }
        databases[dbid] = db
        byName[name] = dbid
        return db
    }

    // MARK: Closing

    /// Clean shutdown: flushes every page, advances the checkpoint to the end of the log,
    /// marks the headers clean and releases the lock. The next open replays nothing.
    public func close() throws {
        if let server = engine.withLock({ controlServer }) {
            // Clients first: their backup sessions abort and their commands stop before the
            // files close under them.
            beginTermination()
            server.stop()
        }
        engine.lock()
        defer { engine.unlock() }
        guard stateValue != .closed else { return }
        let wasUsable = fatal == nil && log?.failed == nil
        stateValue = .terminating
        while backupRunning { engine.unlock(); usleep(1000); engine.lock() }
        defer {
            writeback.stop()
            for db in databases.values { db.file.close() }
            log?.close()
            doublewrite?.close()
            stateValue = .closed
            lockHandle.release()
        }
        guard wasUsable else {
            // Memory may be ahead of the log: write nothing; the next open recovers from disk.
            return
        }
        if mode == .readWrite || cache.dirtyFrames().count > 0 {
            try checkpointLocked()
        }
        try doublewrite?.shrink()
        if mode == .readWrite {
            let end = log?.position ?? .zero
            for db in databases.values {
                db.header.state = .cleanShutdown
                db.header.lastConsistent = end
                db.header.lastConsistentTime = Clock.microsecondsSinceEpoch()
                db.header.genMin = end.generation
                db.header.genMax = end.generation
                try writeHeaderDirectly(db)
            }
        }
    }

    /// Dropped without `close()` (or after a failed open): release the files and the lock
    /// without flushing — every commit is in the log, so the next open recovers exactly as
    /// after a crash. (Flushing here would run the cache's callbacks on an object being
    /// destroyed.)
    deinit {
        writeback.stop()
        if stateValue != .closed {
            for db in databases.values { db.file.close() }
            log?.close()
            doublewrite?.close()
            lockHandle.release()
        }
    }
}
