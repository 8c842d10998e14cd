extension Instance {
    /// Crash recovery (redo): replays every transaction from the checkpoint to the end of
    /// the log (or to `stopAt`), then advances the checkpoint. Called at open with the engine
    /// lock held, after torn pages were put back from the doublewrite file.
    ///
    /// Correct for database files whose pages are of any mix of ages no older than the
    /// checkpoint (after a crash, or a page-by-page copy taken while writers ran): each page
    /// group of the log is applied only to the page version it was made from (its "before"
    /// dbtime) and skipped on a page already at its "after" dbtime or newer, so a page on disk
    /// at any version from the checkpoint on is brought forward through exactly the changes it
    /// lacks, none twice, in order. A page older than that (a missing change) stops recovery:
    /// the log and the database do not belong together. A change that defines the whole page
    /// (a new page of a split, an overflow or free page) also applies to a page that was never
    /// written or cannot be read. A torn record at the very end of the newest generation is a
    /// crash and is cut off; anything else that is wrong stops recovery with its ESE error.
    /// `isCancelled` is polled at each generation, every `cancelPollInterval` records and every
    /// `cancelPollInterval` pages redone.
    ///
    /// With `feed` (a restore), the generations come from the caller as it reads them, checked
    /// by it (`LogFeed`), instead of from the instance's directory: none is read twice.
    func recover(stopAt: RecoveryStop? = nil, feed: LogFeed? = nil, isCancelled: () -> Bool = { false }) throws {
        let start = checkpoint.position
        recoveryReport.startPosition = start
        // The directory's generations, all known before replay starts; a feed's are added as
        // they come.
        var chain: [(gen: UInt32, path: String)] = []
        var current: LogReader.Generation?
        if feed == nil {
            try finishInterruptedRoll()
            let archived = try archivedGenerations().filter { $0 >= start.generation }
            let currentPath = file(FileNames.currentLog)
            chain = archived.map { ($0, file(FileNames.archivedLog($0))) }
            if fs.exists(currentPath) {
                let g = try currentAfterCleanShutdown(currentPath, checkpoint: start) ?? LogReader.read(fs: fs, path: currentPath)
                chain.append((g.header.generation, currentPath))
                current = g
            }
            guard let first = chain.first else { throw noLog(from: start) }
            if first.gen != start.generation {
                throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(start.generation)) (needed from the checkpoint) "
                    + "is missing in \(path); restore from a backup")
            }
            for (i, g) in chain.enumerated() where i > 0 && g.gen != chain[i - 1].gen + 1 {
                throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(chain[i - 1].gen + 1)) is missing in \(path) "
                    + "(found \(FileNames.archivedLog(chain[i - 1].gen)) then \(g.path)); restore from a backup")
            }
        }

        var cursor = ReplayCursor()
        var previous: LogFormat.Header?
        var headers: [UInt32: LogFormat.Header] = [:]
        var versions: [UInt32: UInt32] = [:]
        var endOffset = LogFormat.headerSize
        var lastEnd = start
        var stopped: LogPosition?
        let batch = RedoBatch()
        let batchBytes = redoBatchBytes()
        let capacity = cache.capacity
        cache.capacity = max(16, min(capacity, (parameters.cacheSize - batchBytes) / parameters.pageSize))
        defer { cache.capacity = capacity }
        events.log(.recoveryStart, "recovery started", [("from", .string(start.description))])
        func checkCancelled(_ place: String) throws {
            if isCancelled() {
                throw JetError(.termInProgress, "recovery of \(path) was interrupted at \(place) before it finished; nothing is lost: "
                    + "the checkpoint has not moved, and the next open replays again")
            }
        }
        var i = 0
        replay: while true {
            defer { i += 1 }
            let entry: (gen: UInt32, path: String)
            if feed != nil {
                let g = start.generation + UInt32(i)
                entry = (g, file(FileNames.archivedLog(g)))
            } else {
                guard i < chain.count else { break replay }
                entry = chain[i]
            }
            try checkCancelled(entry.path)
            if case .generation(let g) = stopAt, entry.gen > g {
                stopped = lastEnd
                break replay
            }
            let from = entry.gen == start.generation ? Int(start.offset) : LogFormat.headerSize
            let gen: LogReader.Generation
            if let feed {
                guard let g = try feed.next(isCancelled: isCancelled) else { break replay }
                guard g.header.generation == entry.gen else {
                    throw JetError(.missingLogFile, "\(g.path) (generation \(g.header.generation)) was handed to recovery where generation "
                        + "\(entry.gen) is next; the log handed over is not a chain from the checkpoint")
                }
                chain.append(entry)
                gen = g
            } else {
                let isLast = i == chain.count - 1
                // The current generation was read whole above: its records from `from` on are
                // the same as a read from there if that read got as far (replay skips those
                // before `from`). A parsed generation's payloads are unmasked in place: never
                // parse it twice.
                if isLast, let c = current, c.end.offset >= from {
                    gen = c
                } else {
                    gen = try LogReader.read(fs: fs, path: entry.path, from: from)
                }
                if let fault = LogChainFault.check(gen, expected: entry.gen, signature: parameters.logSignature,
                                                   previousCreation: previous?.creationTime, allowTornTail: isLast) {
                    throw fault.error(file: entry.path, given: false)
                }
            }
            previous = gen.header
            batch.notePath(gen.path, generation: entry.gen)
            headers[entry.gen] = gen.header
            versions[entry.gen] = gen.bytes.withUnsafeBytes { $0.u32(LogFormat.versionOffset) }
            recoveryReport.generationsRead += 1
            // A fed generation is parsed whole; replay starts at the checkpoint all the same.
            for (k, frag) in gen.fragments.drop(while: { $0.offset < from }).enumerated() {
                if k % Self.cancelPollInterval == Self.cancelPollInterval - 1 { try checkCancelled("\(gen.path) offset \(frag.offset)") }
                if let payload = try cursor.feed(frag, gen, firstInGeneration: k == 0) {
                    let place = "\(gen.path) offset \(frag.offset)"
                    let commitTime = try payload.withUnsafeBytes { try LogTransaction.commitTime($0, where: place) }
                    if case .time(let t) = stopAt, commitTime > t {
                        stopped = lastEnd
                        break replay
                    }
                    try file(payload, into: batch, transaction: recoveryReport.transactionsReplayed,
                             position: LogPosition(generation: entry.gen, offset: UInt32(frag.offset)), place: place)
                    if batch.bytes >= batchBytes { try redo(batch, checkCancelled: checkCancelled) }
                    lastEnd = LogPosition(generation: entry.gen, offset: UInt32(frag.offset + LogFormat.recordSize(payload: frag.payload.count)))
                    recoveryReport.transactionsReplayed += 1
                    recoveryReport.lastCommitTime = commitTime
                    recoveryReport.lastCommitEnd = lastEnd
                    lastCommitTime = max(lastCommitTime, commitTime)
                }
            }
            // A bad end that is not the torn tail of the newest generation was refused above,
            // before any of the generation was applied.
            switch gen.end {
            case .clean(let o):
                endOffset = o
            case .bad(let o, _, _):
                endOffset = o
                recoveryReport.tornTailCut = true
            }
        }
        try redo(batch, checkCancelled: checkCancelled)
        if let stop = stopped {
            try discardLog(after: stop, chain: chain)
            chain = chain.filter { $0.gen <= stop.generation }
            endOffset = Int(stop.offset)
            recoveryReport.tornTailCut = false
            recoveryReport.stoppedAt = stop
        }
        if feed != nil && chain.isEmpty { throw noLog(from: start) }
        guard let last = chain.last, let header = headers[last.gen] else { return }
        // Open the newest generation for appending at the end of what is valid: zero the
        // torn tail so no later reader mistakes it for records.
        let target = file(FileNames.currentLog)
        if last.path != target {
            // The newest generation is archived (a restore lays logs out this way): start the next.
            let next = LogFormat.Header(generation: header.generation + 1, signature: parameters.logSignature,
                                        creationTime: Clock.microsecondsSinceEpoch(), previousCreationTime: header.creationTime,
                                        fileSize: UInt32(parameters.logFileSize))
            let f = try LogWriter.createGeneration(fs: fs, path: target, header: next)
            try fs.syncDirectory(path)
            log = LogWriter(fs: fs, directory: path, signature: parameters.logSignature, fileSize: parameters.logFileSize, spares: try spares(),
                            generation: next.generation, creationTime: next.creationTime, file: f,
                            fileLength: Int(next.fileSize), endOffset: LogFormat.headerSize, fileIsDurable: true)
        } else {
            let f = try fs.open(target, .readWrite)
            let size = Int(header.fileSize)
            if recoveryReport.tornTailCut {
                let zeros = [UInt8](repeating: 0, count: size - endOffset)
                try zeros.withUnsafeBytes { try f.write(at: Int64(endOffset), $0) }
                try f.sync()
                events.log(.recoveryEnd, "a torn record at the end of the log was cut off (an interrupted write)",
                           [("file", .string(FileNames.currentLog)), ("offset", .int(Int64(endOffset)))], level: .warning)
            }
            // Its records are durable when it was cut and fsynced above, or when none was
            // replayed: a clean shutdown fsynced them (records of an unfinished transaction,
            // which nothing replays, may be lost with no harm). Replayed records a killed
            // process wrote may still be only in the page cache: the next flush fsyncs them.
            log = LogWriter(fs: fs, directory: path, signature: parameters.logSignature, fileSize: parameters.logFileSize, spares: try spares(),
                            generation: header.generation, creationTime: header.creationTime, file: f,
                            fileLength: size, endOffset: endOffset,
                            fileIsDurable: recoveryReport.tornTailCut || recoveryReport.transactionsReplayed == 0)
            // A generation of an earlier format that this one reads is not continued: new
            // records go into a generation whose header names their format, so an earlier
            // jetbackup refuses them by version instead of calling a record damaged.
            if mode == .readWrite, let v = versions[last.gen], v < LogFormat.version {
                _ = try log!.roll()
            }
        }
        recoveryReport.endPosition = log!.position
        // Headers follow the replayed page 0 of each database.
        for db in databases.values {
            let f = try cache.fetch(db.dbid, PageFormat.headerPage)
            if let h = DatabaseHeader.decode(f.bytes) {
                db.header.pageCount = h.pageCount
                db.header.rootPage = h.rootPage
                db.header.freeListHead = h.freeListHead
                db.header.freeCount = h.freeCount
                db.header.dbtime = h.dbtime
            }
            cache.endOperation()
        }
        if recoveryReport.transactionsReplayed > 0 || recoveryReport.tornTailCut || recoveryReport.endPosition != start
            || stopped != nil {
            try checkpointLocked()
        }
        events.log(.recoveryEnd, "recovery finished", [
            ("transactions", .int(Int64(recoveryReport.transactionsReplayed))),
            ("generations", .int(Int64(recoveryReport.generationsRead))),
            ("tornTail", .bool(recoveryReport.tornTailCut)),
            ("pagesRepaired", .int(Int64(recoveryReport.pagesRepaired))),
            ("redoBatches", .int(Int64(recoveryReport.redoBatches))),
        ])
    }

    /// After a clean shutdown the log ends where every database header says it is consistent,
    /// which is the checkpoint (the close writes both there, and an open marks the headers
    /// dirty, durably, before it logs anything). The current generation is then read only as
    /// far as its header and the empty record header at that end, not whole (1 MiB: 0.4 ms of
    /// every open). nil — read it whole — for anything else: a database not shut down cleanly,
    /// positions that differ, another generation or size in the header, a byte at the end that
    /// is not zero, a read that fails.
    private func currentAfterCleanShutdown(_ path: String, checkpoint start: LogPosition) throws -> LogReader.Generation? {
        guard !databases.isEmpty,
              databases.values.allSatisfy({ $0.header.state == .cleanShutdown && $0.header.lastConsistent == start }) else { return nil }
        guard let f = try? fs.open(path, .readOnly) else { return nil }
        defer { f.close() }
        guard let size = try? f.size() else { return nil }
        let end = Int(start.offset)
        guard end >= LogFormat.headerSize, end <= size else { return nil }
        var head = [UInt8](repeating: 0, count: LogFormat.headerSize)
        guard (try? head.withUnsafeMutableBytes { try f.read(at: 0, into: $0) }) == LogFormat.headerSize,
              let header = try? head.withUnsafeBytes({ try LogFormat.Header.decode($0, file: path) }),
              header.generation == start.generation, Int(header.fileSize) == size else { return nil }
        if end + LogFormat.recordHeaderSize <= size {
            var next = [UInt8](repeating: 0xFF, count: LogFormat.recordHeaderSize)
            guard (try? next.withUnsafeMutableBytes { try f.read(at: Int64(end), into: $0) }) == next.count,
                  next.allSatisfy({ $0 == 0 }) else { return nil }
        }
        return LogReader.Generation(path: path, header: header, bytes: head, fragments: [], end: .clean(offset: end))
    }

    private func noLog(from start: LogPosition) -> JetError {
        JetError(.missingLogFile, "no log generation from \(FileNames.archivedLog(start.generation)) on is in \(path); "
            + "the log the checkpoint needs is gone: restore from a backup")
    }

    /// Records read, or pages redone, between two polls of recovery's `isCancelled`.
    static let cancelPollInterval = 64

    /// Point-in-time stop: the log after `stop` is discarded — later generations deleted, the
    /// rest of `stop`'s generation zeroed — so no later recovery replays it.
    private func discardLog(after stop: LogPosition, chain: [(gen: UInt32, path: String)]) throws {
        for entry in chain where entry.gen > stop.generation {
            try fs.remove(entry.path)
        }
        if let keep = chain.first(where: { $0.gen == stop.generation }) {
            let f = try fs.open(keep.path, .readWrite)
            defer { f.close() }
            let size = Int(try f.size())
            if size > Int(stop.offset) {
                let zeros = [UInt8](repeating: 0, count: size - Int(stop.offset))
                try zeros.withUnsafeBytes { try f.write(at: Int64(stop.offset), $0) }
            }
            try f.sync()
        }
        try fs.syncDirectory(path)
        events.log(.recoveryEnd, "recovery stopped at the requested point; the log after it was discarded",
                   [("at", .string(stop.description))], level: .warning)
    }

    /// A roll interrupted between its two renames leaves `edbtmp.log` and no `edb.log`.
    private func finishInterruptedRoll() throws {
        let cur = file(FileNames.currentLog), tmp = file(FileNames.preparedLog)
        if !fs.exists(cur) && fs.exists(tmp) {
            // Only if it continues the newest archived generation; otherwise it is a leftover.
            if let newest = try archivedGenerations().last,
               let g = try? LogReader.read(fs: fs, path: tmp), g.header.generation == newest + 1 {
                try fs.rename(tmp, cur)
                try fs.syncDirectory(path)
            }
        }
    }

    /// The memory recovery gives a `RedoBatch` before it applies it. When the databases are
    /// larger than the cache, three quarters of the cache's, which the cache gives up while
    /// recovery runs: a batch uses each of its pages once, in page order, so what the cache
    /// keeps between batches matters little next to how many changes a batch gathers. When
    /// the cache can hold every page, the cache keeps its memory and a batch is 1 MiB.
    private func redoBatchBytes() -> Int {
        // The header on disk may lag the file after a crash; either tells the size.
        let pages = databases.values.reduce(0) { $0 + max(Int($1.header.pageCount), Int((try? $1.file.size()) ?? 0) / parameters.pageSize) }
        guard pages > parameters.cacheSize / parameters.pageSize else { return 1 << 20 }
        return parameters.cacheSize / 4 * 3
    }

    /// Files one replayed transaction's page groups in `batch`. A database the transaction
    /// creates is created now: no group before it in the log can be for it (a group for a
    /// database not attached is refused here, where it is in the log).
    private func file(_ payload: [UInt8], into batch: RedoBatch, transaction: Int, position: LogPosition, place: String) throws {
        try batch.file(payload, transaction: transaction, position: position, place: place, database: { dbid in
            _ = try replayDatabase(dbid, place)
        }, create: { dbid, pageSize, sig, name in
            if let db = databases[dbid] {
                guard db.header.signature == sig else {
                    throw JetError(.invalidDatabase, "the log at \(place) creates database \(name) with id \(dbid), "
                        + "but \(db.path) has that id with another signature")
                }
                return
            }
            guard Int(pageSize) == parameters.pageSize, FileNames.isValidDatabaseName(name) else {
                throw JetError(.logReadVerifyFailure, "the log at \(place) creates a database with a bad name or page size")
            }
            _ = try createDatabaseFile(name: name, dbid: dbid, signature: sig)
        })
    }

    /// Applies what `batch` holds (see `RedoBatch`), first asking the file system to read
    /// ahead the pages it changes that are not cached, in file order. `checkCancelled` is
    /// polled every `cancelPollInterval` pages.
    private func redo(_ batch: RedoBatch, checkCancelled: (String) throws -> Void) throws {
        guard !batch.isEmpty else { return }
        recoveryReport.redoBatches += 1
        var held: [UInt64: PageFrame] = [:]
        defer {
            for f in held.values { cache.release(f) }
            cache.endOperation()
        }
        var done = 0
        try batch.run(prepare: { order in
            for p in order where p.next >= 0 {
                if cache.cached(p.dbid, p.pgno) == nil, let db = databases[p.dbid], !batch.definesWholePage(Int(p.next)) {
                    db.file.willNeed(offset: Int64(p.pgno) * Int64(db.pageSize), length: db.pageSize)
                }
            }
        }, { p, w in try redo(w, on: p, in: batch) }, hold: { p, on in
            // A page in the middle of a transaction stays pinned until the rest is applied.
            let key = PageFrame.key(p.dbid, p.pgno)
            if on {
                if let f = cache.cached(p.dbid, p.pgno) {
                    cache.hold(f)
                    held[key] = f
                }
            } else if let f = held.removeValue(forKey: key) {
                cache.release(f)
            }
        }, endPage: {
            cache.endOperation()
            done += 1
            if done % Self.cancelPollInterval == 0 { try checkCancelled("a batch of redo (\(done) pages applied)") }
        })
    }

    /// Applies one page group. Whether a page takes a transaction's changes is decided at its
    /// first group of that transaction (its dbtime against the group's before and after) and
    /// holds for its later groups in the same transaction.
    private func redo(_ g: RedoBatch.Work, on p: RedoBatch.Page, in batch: RedoBatch) throws {
        let db = try replayDatabase(p.dbid, batch.place(g.seq))
        let f: PageFrame
        if p.transaction != g.transaction {
            let (frame, blank) = try cache.fetchForRedo(p.dbid, p.pgno, blankIfUnreadable: g.whole)
            p.transaction = g.transaction
            p.takesTransaction = blank || frame.dbtime < g.after
            guard p.takesTransaction else { return }
            guard blank || frame.dbtime == g.before else {
                throw JetError(.logReadVerifyFailure,
                               "the log at \(batch.place(g.seq)) changes page \(p.pgno) of \(db.name) from dbtime \(g.before), but the page is at dbtime \(frame.dbtime); the log and database do not belong together: restore from a backup")
            }
            f = frame
        } else {
            guard p.takesTransaction else { return }
            f = try cache.fetchForRedo(p.dbid, p.pgno, blankIfUnreadable: false).frame
        }
        // Decoded only now, for a page that takes them (`run` has decoded a move's already).
        for c in try g.changes ?? batch.changes(of: g.seq) {
            var source: PageFrame?
            if case .move(let from, _) = c {
                source = try splitSource(from, of: g, for: p.pgno, in: db, batch: batch, place: batch.place(g.seq))
                cache.splitMoved(from: source!, to: f)
            }
            do {
                try c.apply(to: f.buffer, pgno: p.pgno, source: source?.buffer)
            } catch let m as PageChange.Misfit {
                throw JetError(.logReadVerifyFailure,
                               "the log at \(batch.place(g.seq)) makes a change to page \(p.pgno) of \(db.name) that does not fit it (\(m.what)); the log and database do not belong together: restore from a backup")
            }
        }
        PageChange.stamp(f.buffer, pgno: p.pgno, dbtime: g.after)
        f.dirty = true
        f.lastLoggedEnd = 0
    }

    /// The page a split's new page is made from (`PageChange.move`), as it is at that point of
    /// the log (`RedoBatch` has applied its groups before the move and none after): before
    /// the split, unless the page on disk is already past this transaction — then the new page
    /// cannot be rebuilt (its cells are gone from the source), which the engine's write order
    /// rules out after a crash and a full backup rules out by logging the cells while it copies.
    private func splitSource(_ pgno: UInt32, of g: RedoBatch.Work, for target: UInt32, in db: DatabaseFile, batch: RedoBatch,
                             place: @autoclosure () -> String) throws -> PageFrame {
        let source = try cache.fetchForRedo(db.dbid, pgno, blankIfUnreadable: false).frame
        if let s = batch.existing(db.dbid, pgno), s.transaction == g.transaction {
            // It had a group earlier in this transaction: taken or skipped as decided there.
            if s.takesTransaction { return source }
        } else if source.dbtime < g.after {
            // Its own first group, if any, comes later in the transaction and checks its "before".
            return source
        }
        let (s, dbtime) = (pgno, source.dbtime)
        throw JetError(.logReadVerifyFailure,
                       "the log at \(place()) makes page \(target) of \(db.name) from the cells of page \(s) before a split, but page \(s) "
                           + "is already past that split (dbtime \(dbtime)) and page \(target) is not: the pages were not written in the "
                           + "order the log needs; the log and database do not belong together: restore from a backup")
    }

    private func replayDatabase(_ dbid: UInt16, _ place: @autoclosure () -> String) throws -> DatabaseFile {
        guard let db = databases[dbid] else {
            throw JetError(.logReadVerifyFailure, "the log at \(place()) changes database id \(dbid), "
                + "which is not attached and was never created in the log being replayed; its file is missing: restore from a backup")
        }
        return db
    }
}
