/// Appends transactions to the current generation `edb.log` and makes them durable with
/// group commit: committers append under a short lock, then one of them (the leader)
/// writes and fsyncs everything appended so far while the others wait for it.
///
/// Invariants:
/// - bytes [0, `flushedOffset`) of `edb.log` are written; [0, durable.offset) are fsynced;
/// - `unsynced` is false only while every byte of `edb.log` is durable: a flush with nothing
///   pending (a roll when no record was written since the last flush, as in a backup's roll of
///   an instance opened after a clean shutdown) then issues no fsync;
/// - a generation is fsynced before it is renamed to its numbered name, and the next one
///   (prepared as `edbtmp.log` from a spare or a new file, zero-filled, header written and
///   fsynced) takes its place by a rename; the directory is fsynced after both renames.
public final class LogWriter: @unchecked Sendable {
    let fs: any FileSystem
    let directory: String
    let signature: Signature
    private(set) var fileSize: Int
    private let cond = Condition()

    // State under `cond`.
    private var generation: UInt32
    private var creationTime: UInt64
    private var file: any StorageFile
    private var pending: [UInt8] = []
    /// Offset in `edb.log` where `pending` starts.
    private var pendingStart: Int
    private var durable: LogPosition
    private var flushing = false
    /// Bytes of `file` may not be durable (written since its last fsync, or not known to be).
    private var unsynced: Bool
    private var failure: JetError?
    /// Bytes of records appended since this writer opened (headers, payloads, padding).
    private var appended: Int64 = 0
    /// Size of the generations this writer creates (the instance's `log-file-size`); the
    /// current one keeps the size it was created with.
    private let nextFileSize: Int
    /// Files a roll overwrites before it creates one.
    let spares: LogSpares?

    init(fs: any FileSystem, directory: String, signature: Signature, fileSize: Int, spares: LogSpares?,
         generation: UInt32, creationTime: UInt64, file: any StorageFile, fileLength: Int, endOffset: Int, fileIsDurable: Bool) {
        self.fs = fs
        self.unsynced = !fileIsDurable
        self.spares = spares
        self.directory = directory
        self.signature = signature
        self.fileSize = fileLength
        self.nextFileSize = fileSize
        self.generation = generation
        self.creationTime = creationTime
        self.file = file
        self.pendingStart = endOffset
        self.durable = LogPosition(generation: generation, offset: UInt32(endOffset))
    }

    func path(_ name: String) -> String { FilePaths.join(directory, name) }

    /// The position the next record will start at.
    public var position: LogPosition {
        cond.withLock { LogPosition(generation: generation, offset: UInt32(pendingStart + pending.count)) }
    }

    public var currentGeneration: UInt32 { cond.withLock { generation } }

    public var bytesAppended: Int64 { cond.withLock { appended } }

    /// The error that stopped the log, if any: the instance takes no more commits.
    var failed: JetError? { cond.withLock { failure } }

    // MARK: Creating generations

    /// Creates a generation file: header, zero fill to its size, fsync. Used by `init`,
    /// and ahead of each roll for the next one when no spare is left.
    static func createGeneration(fs: any FileSystem, path: String, header: LogFormat.Header) throws -> any StorageFile {
        if fs.exists(path) { try fs.remove(path) }
        let f = try fs.open(path, .createNew)
        do {
            try fill(f, header: header)
        } catch {
            f.close()
            try? fs.remove(path)
            throw error
        }
        return f
    }

    /// Makes an existing file (a spare, or one an earlier run left at the prepared name) the
    /// generation `header` names: every byte rewritten (header, zeros), cut to the header's
    /// size, fsynced. Nothing trusts the file before that fsync returns — a roll renames it to
    /// `edb.log` only afterwards, and a prepared file is always rewritten — so a crash
    /// meanwhile leaves at most a file whose old records nobody reads. Any failure: created anew.
    static func overwriteGeneration(fs: any FileSystem, path: String, header: LogFormat.Header) throws -> any StorageFile {
        guard let f = try? fs.open(path, .readWrite) else { return try createGeneration(fs: fs, path: path, header: header) }
        do {
            if try f.size() > Int64(header.fileSize) { try f.truncate(to: Int64(header.fileSize)) }
            try fill(f, header: header)
            return f
        } catch {
            f.close()
            return try createGeneration(fs: fs, path: path, header: header)
        }
    }

    /// Writes the header and zeros to the header's file size, then fsyncs. Zeros, so later
    /// appends overwrite allocated blocks and the end of what was written is the first zero
    /// record header. One gathered write, the zeros all taken from one page: a megabyte of
    /// fresh zeroed memory costs a page fault a page, each several microseconds on the VMs
    /// measured.
    private static func fill(_ f: any StorageFile, header: LogFormat.Header) throws {
        let h = header.encode()
        let zero = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { zero.deallocate() }
        zero.initializeMemory(as: UInt8.self, repeating: 0)
        try h.withUnsafeBytes { hb in
            var parts = [hb]
            var off = hb.count
            let size = Int(header.fileSize)
            while off < size {
                let n = min(zero.count, size - off)
                parts.append(UnsafeRawBufferPointer(rebasing: zero[0..<n]))
                off += n
            }
            try f.write(at: 0, gathering: parts)
        }
        try f.sync()
    }

    /// The next generation, at the prepared name: a file left there, or a spare, rewritten;
    /// else a new file.
    private func prepareNext(after gen: UInt32, creation: UInt64) throws -> (any StorageFile, LogFormat.Header) {
        let header = LogFormat.Header(generation: gen + 1, signature: signature, creationTime: Clock.microsecondsSinceEpoch(),
                                      previousCreationTime: creation, fileSize: UInt32(nextFileSize))
        let p = path(FileNames.preparedLog)
        if !fs.exists(p), let spare = spares?.take() { try? fs.rename(spare, p) }
        if fs.exists(p) { return (try LogWriter.overwriteGeneration(fs: fs, path: p, header: header), header) }
        return (try LogWriter.createGeneration(fs: fs, path: p, header: header), header)
    }

    // MARK: Appending

    /// Appends one transaction; returns the positions of its start and end. It is durable
    /// once `waitDurable(end)` returns.
    func append(_ payload: [UInt8]) throws -> (start: LogPosition, end: LogPosition) {
        cond.lock()
        defer { cond.unlock() }
        if let f = failure { throw JetError(.instanceUnavailable, "the log could not be written earlier (\(f.message)); "
            + "restart the instance to recover") }
        let start = LogPosition(generation: generation, offset: UInt32(pendingStart + pending.count))
        try payload.withUnsafeBytes { p in
            var rest = p[...]
            var first = true
            while true {
                let room = fileSize - (pendingStart + pending.count) - LogFormat.recordHeaderSize
                let minimum = 64
                if room >= rest.count {
                    LogFormat.appendRecord(&pending, type: first ? .full : .last, payload: UnsafeRawBufferPointer(rebasing: rest))
                    appended += Int64(LogFormat.recordSize(payload: rest.count))
                    break
                }
                if room >= minimum {
                    let take = room & ~(LogFormat.alignment - 1)
                    let n = min(take, rest.count)
                    LogFormat.appendRecord(&pending, type: first ? .first : .middle,
                                           payload: UnsafeRawBufferPointer(rebasing: rest.prefix(n)))
                    appended += Int64(LogFormat.recordSize(payload: n))
                    rest = rest.dropFirst(n)
                    first = false
                    if rest.isEmpty {
                        // Cannot happen: room < rest.count above; kept for clarity of the loop's end.
                        break
                    }
                }
                try rollLocked()
            }
        }
        let end = LogPosition(generation: generation, offset: UInt32(pendingStart + pending.count))
        return (start, end)
    }

    /// Waits until the log is durable up to `position`; the first waiter writes and fsyncs
    /// for everyone (group commit).
    func waitDurable(_ position: LogPosition) throws {
        cond.lock()
        defer { cond.unlock() }
        while durable < position {
            if let f = failure { throw JetError(.instanceUnavailable, "the log could not be written (\(f.message)); "
                + "restart the instance to recover") }
            if flushing { cond.wait(); continue }
            try flushLocked()
        }
    }

    /// Writes and fsyncs what is pending. Called with the lock held; releases it during I/O.
    private func flushLocked() throws {
        flushing = true
        let bytes = pending
        let at = pendingStart
        let target = LogPosition(generation: generation, offset: UInt32(at + bytes.count))
        let f = file
        pending.removeAll(keepingCapacity: true)
        pendingStart = at + bytes.count
        if bytes.isEmpty && !unsynced {
            // Everything in the file is durable already.
            flushing = false
            if target > durable { durable = target }
            cond.broadcast()
            return
        }
        unsynced = true
        cond.unlock()
        var err: JetError?
        do {
            if !bytes.isEmpty { try bytes.withUnsafeBytes { try f.write(at: Int64(at), $0) } }
            try f.sync()
        } catch let e as JetError {
            err = e
        } catch {
            err = JetError(.diskIO, "\(error)")
        }
        cond.lock()
        flushing = false
        if err == nil { unsynced = false }
        if let e = err {
            failure = JetError(e.code == .diskFull ? .diskFull : .logWriteFail, "writing \(f.path): \(e.message)")
            cond.broadcast()
            throw JetError(.logWriteFail, "could not write the log \(f.path): \(e.message); the instance takes no more commits until it is reopened")
        }
        if target > durable { durable = target }
        cond.broadcast()
    }

    /// Makes everything appended durable.
    func flush() throws { try waitDurable(position) }

    /// Finishes the current generation and starts the next one; returns the finished one.
    @discardableResult
    func roll() throws -> UInt32 {
        cond.lock()
        defer { cond.unlock() }
        if let f = failure { throw JetError(.instanceUnavailable, "the log could not be written earlier (\(f.message))") }
        let g = generation
        try rollLocked()
        return g
    }

    private func rollLocked() throws {
        while flushing { cond.wait() }
        // Finish the current generation: pending bytes written and fsynced.
        try flushLocked()
        while flushing { cond.wait() }
        do {
            let (next, header) = try prepareNext(after: generation, creation: creationTime)
            file.close()
            try fs.rename(path(FileNames.currentLog), path(FileNames.archivedLog(generation)))
            try fs.rename(path(FileNames.preparedLog), path(FileNames.currentLog))
            try fs.syncDirectory(directory)
            generation = header.generation
            creationTime = header.creationTime
            fileSize = Int(header.fileSize)
            file = next
            unsynced = false // written and fsynced by prepareNext
            pendingStart = LogFormat.headerSize
            durable = LogPosition(generation: generation, offset: UInt32(LogFormat.headerSize))
        } catch let e as JetError {
            failure = e
            cond.broadcast()
            throw JetError(e.code == .diskFull ? .diskFull : .logWriteFail,
                           "could not start log generation \(generation + 1): \(e.message); the instance takes no more commits until it is reopened")
        }
    }

    func close() {
        cond.withLock { file.close() }
    }
}
