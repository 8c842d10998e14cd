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
    /// `isCancelled` is polled at each generation and every `cancelPollInterval` records.
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
                let g = try LogReader.read(fs: fs, path: currentPath)
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
            headers[entry.gen] = gen.header
            versions[entry.gen] = gen.bytes.withUnsafeBytes { $0.u32(LogFormat.versionOffset) }
            recoveryReport.generationsRead += 1
            // A fed generation is parsed whole; replay starts at the checkpoint all the same.
            for (k, frag) in gen.fragments.drop(while: { $0.offset < from }).enumerated() {
                if k % Self.cancelPollInterval == Self.cancelPollInterval - 1 { try checkCancelled("\(gen.path) offset \(frag.offset)") }
                if let payload = try cursor.feed(frag, gen, firstInGeneration: k == 0) {
                    let place = "\(gen.path) offset \(frag.offset)"
                    let txn = try payload.withUnsafeBytes { try LogTransaction.decode($0, where: place) }
                    if case .time(let t) = stopAt, txn.commitTime > t {
                        stopped = lastEnd
                        break replay
                    }
                    prefetch(txn.operations)
                    try apply(txn.operations, place: place)
                    lastEnd = LogPosition(generation: entry.gen, offset: UInt32(frag.offset + LogFormat.recordSize(payload: frag.payload.count)))
                    recoveryReport.transactionsReplayed += 1
                    recoveryReport.lastCommitTime = txn.commitTime
                    recoveryReport.lastCommitEnd = lastEnd
                    lastCommitTime = max(lastCommitTime, txn.commitTime)
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
            log = LogWriter(fs: fs, directory: path, signature: parameters.logSignature, fileSize: parameters.logFileSize,
                            generation: next.generation, creationTime: next.creationTime, file: f,
                            fileLength: Int(next.fileSize), endOffset: LogFormat.headerSize)
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
            log = LogWriter(fs: fs, directory: path, signature: parameters.logSignature, fileSize: parameters.logFileSize,
                            generation: header.generation, creationTime: header.creationTime, file: f,
                            fileLength: size, endOffset: endOffset)
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
        ])
    }

    private func noLog(from start: LogPosition) -> JetError {
        JetError(.missingLogFile, "no log generation from \(FileNames.archivedLog(start.generation)) on is in \(path); "
            + "the log the checkpoint needs is gone: restore from a backup")
    }

    /// Records replayed between two polls of recovery's `isCancelled`.
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

    /// Asks the file system to read ahead the pages a transaction changes that are not cached:
    /// redo then finds them in memory instead of waiting for each read in turn.
    private func prefetch(_ ops: [LogOperation]) {
        for op in ops {
            if case .page(let dbid, let pgno, _, _, let changes) = op, !(changes.first?.definesWholePage ?? false),
               cache.cached(dbid, pgno) == nil, let db = databases[dbid] {
                db.file.willNeed(offset: Int64(pgno) * Int64(db.pageSize), length: db.pageSize)
            }
        }
    }

    /// Applies one replayed transaction to the cached pages. Whether a page takes the
    /// transaction's changes is decided at its first group (its dbtime against the group's
    /// before and after) and holds for its later groups in the same transaction.
    private func apply(_ ops: [LogOperation], place: String) throws {
        defer { cache.endOperation() }
        var redone: [UInt64: (frame: PageFrame, apply: Bool)] = [:]
        for op in ops {
            switch op {
            case .createDatabase(let dbid, let pageSize, let sig, let name):
                if let db = databases[dbid] {
                    guard db.header.signature == sig else {
                        throw JetError(.invalidDatabase, "the log at \(place) creates database \(name) with id \(dbid), "
                            + "but \(db.path) has that id with another signature")
                    }
                    continue
                }
                guard Int(pageSize) == parameters.pageSize, FileNames.isValidDatabaseName(name) else {
                    throw JetError(.logReadVerifyFailure, "the log at \(place) creates a database with a bad name or page size")
                }
                _ = try createDatabaseFile(name: name, dbid: dbid, signature: sig)
            case .page(let dbid, let pgno, let before, let after, let changes):
                let db = try replayDatabase(dbid, place)
                let key = PageFrame.key(dbid, pgno)
                let f: PageFrame
                if let seen = redone[key] {
                    guard seen.apply else { continue }
                    f = seen.frame
                } else {
                    let whole = changes.first?.definesWholePage ?? false
                    let (frame, blank) = try cache.fetchForRedo(dbid, pgno, blankIfUnreadable: whole)
                    let apply = blank || frame.dbtime < after
                    redone[key] = (frame, apply)
                    guard apply else { continue }
                    guard blank || frame.dbtime == before else {
                        throw JetError(.logReadVerifyFailure,
                                       "the log at \(place) changes page \(pgno) of \(db.name) from dbtime \(before), but the page is at dbtime \(frame.dbtime); the log and database do not belong together: restore from a backup")
                    }
                    f = frame
                }
                for c in changes {
                    var source: PageFrame?
                    if case .move(let from, _) = c {
                        source = try splitSource(dbid, from, after: after, for: pgno, in: db, place: place, redone: redone)
                        cache.splitMoved(from: source!, to: f)
                    }
                    do {
                        try c.apply(to: f.buffer, pgno: pgno, source: source?.buffer)
                    } catch let m as PageChange.Misfit {
                        throw JetError(.logReadVerifyFailure,
                                       "the log at \(place) makes a change to page \(pgno) of \(db.name) that does not fit it (\(m.what)); the log and database do not belong together: restore from a backup")
                    }
                }
                PageChange.stamp(f.buffer, pgno: pgno, dbtime: after)
                f.dirty = true
                f.lastLoggedEnd = 0
            }
        }
    }

    /// The page a split's new page is made from (`PageChange.move`), as it is at that point of
    /// the transaction: before the split, unless the page on disk is already past this
    /// transaction — then the new page cannot be rebuilt (its cells are gone from the source),
    /// which the engine's write order rules out after a crash and a full backup rules out by
    /// logging the cells while it copies.
    private func splitSource(_ dbid: UInt16, _ pgno: UInt32, after: UInt64, for target: UInt32, in db: DatabaseFile, place: String,
                             redone: [UInt64: (frame: PageFrame, apply: Bool)]) throws -> PageFrame {
        let key = PageFrame.key(dbid, pgno)
        let source: PageFrame
        if let seen = redone[key] {
            source = seen.frame
            if seen.apply { return source }
        } else {
            // Its own first group comes later in the transaction and checks its "before".
            source = try cache.fetchForRedo(dbid, pgno, blankIfUnreadable: false).frame
            if source.dbtime < after { return source }
        }
        throw JetError(.logReadVerifyFailure,
                       "the log at \(place) makes page \(target) of \(db.name) from the cells of page \(pgno) before a split, but page \(pgno) "
                           + "is already past that split (dbtime \(source.dbtime)) and page \(target) is not: the pages were not written in the "
                           + "order the log needs; the log and database do not belong together: restore from a backup")
    }

    private func replayDatabase(_ dbid: UInt16, _ place: String) throws -> DatabaseFile {
        guard let db = databases[dbid] else {
            throw JetError(.logReadVerifyFailure, "the log at \(place) changes database id \(dbid), "
                + "which is not attached and was never created in the log being replayed; its file is missing: restore from a backup")
        }
        return db
    }
}
