extension Instance {
    /// Crash recovery (redo): replays every transaction from the checkpoint to the end of
    /// the log, then advances the checkpoint. Called at open with the engine lock held.
    ///
    /// Correct for database files whose pages are of any mix of ages (a page-by-page copy
    /// taken while writers ran): every page changed after the checkpoint has a full image
    /// after it, so replay rebuilds it whatever is on disk; a page not changed since is
    /// already right on disk. Each byte-range record is applied only on top of the exact
    /// page version it was made from (its dbtime), so nothing is applied twice or out of
    /// order. A torn record at the very end of the newest generation is a crash and is cut
    /// off; anything else that is wrong stops recovery with its ESE error. `isCancelled` is
    /// polled at each generation and every `cancelPollInterval` records.
    func recover(isCancelled: () -> Bool = { false }) throws {
        let start = checkpoint.position
        recoveryReport.startPosition = start
        try finishInterruptedRoll()
        let archived = try archivedGenerations().filter { $0 >= start.generation }
        let currentPath = file(FileNames.currentLog)
        var chain: [(gen: UInt32, path: String)] = archived.map { ($0, file(FileNames.archivedLog($0))) }
        var current: LogReader.Generation?
        if fs.exists(currentPath) {
            let g = try LogReader.read(fs: fs, path: currentPath)
            chain.append((g.header.generation, currentPath))
            current = g
        }
        guard let first = chain.first else {
            throw JetError(.missingLogFile, "no log generation from \(FileNames.archivedLog(start.generation)) on is in \(path); "
                + "the log the checkpoint needs is gone: restore from a backup")
        }
        if first.gen != start.generation {
            throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(start.generation)) (needed from the checkpoint) is missing in \(path); restore from a backup")
        }
        for (i, g) in chain.enumerated() where i > 0 && g.gen != chain[i - 1].gen + 1 {
            throw JetError(.missingLogFile, "log generation \(FileNames.archivedLog(chain[i - 1].gen + 1)) is missing in \(path) (found \(FileNames.archivedLog(chain[i - 1].gen)) then \(g.path))"
                + "; restore from a backup")
        }

        var cursor = ReplayCursor()
        var previous: LogFormat.Header?
        var established = Set<UInt64>()
        var endOffset = LogFormat.headerSize
        var lastHeader: LogFormat.Header?
        events.log(.recoveryStart, "recovery started", [("from", .string(start.description))])
        func checkCancelled(_ place: String) throws {
            if isCancelled() {
                throw JetError(.termInProgress, "recovery of \(path) was interrupted at \(place) before it finished; nothing is lost: "
                    + "the checkpoint has not moved, and the next open replays again")
            }
        }
        for (i, entry) in chain.enumerated() {
            try checkCancelled(entry.path)
            let isLast = i == chain.count - 1
            let from = entry.gen == start.generation ? Int(start.offset) : LogFormat.headerSize
            // A parsed generation's payloads are unmasked in place: never parse it twice.
            let gen = (isLast && current != nil && from == LogFormat.headerSize) ? current!
                : try LogReader.read(fs: fs, path: entry.path, from: from)
            if let fault = LogChainFault.check(gen, expected: entry.gen, signature: parameters.logSignature,
                                               previousCreation: previous?.creationTime, allowTornTail: isLast) {
                throw fault.error(file: entry.path, given: false)
            }
            previous = gen.header
            lastHeader = gen.header
            recoveryReport.generationsRead += 1
            for (k, frag) in gen.fragments.enumerated() {
                if k % Self.cancelPollInterval == Self.cancelPollInterval - 1 { try checkCancelled("\(entry.path) offset \(frag.offset)") }
                if let payload = try cursor.feed(frag, gen, firstInGeneration: k == 0) {
                    let place = "\(entry.path) offset \(frag.offset)"
                    let ops = try payload.withUnsafeBytes { try LogOperation.decode($0, where: place) }
                    try apply(ops, place: place, established: &established)
                    recoveryReport.transactionsReplayed += 1
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
        guard let header = lastHeader else { return }
        // Open the newest generation for appending at the end of what is valid: zero the
        // torn tail so no later reader mistakes it for records.
        let target = file(FileNames.currentLog)
        if chain.last!.path != target {
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
        }
        recoveryReport.endPosition = log!.position
        // Headers follow the replayed page 0 of each database.
        for db in databases.values {
            if let f = cache.cached(db.dbid, PageFormat.headerPage), let h = DatabaseHeader.decode(f.bytes) {
                db.header.pageCount = h.pageCount
                db.header.rootPage = h.rootPage
                db.header.freeListHead = h.freeListHead
                db.header.freeCount = h.freeCount
                db.header.dbtime = h.dbtime
            }
        }
        if recoveryReport.transactionsReplayed > 0 || recoveryReport.tornTailCut || recoveryReport.endPosition != start {
            try checkpointLocked()
        }
        events.log(.recoveryEnd, "recovery finished", [
            ("transactions", .int(Int64(recoveryReport.transactionsReplayed))),
            ("generations", .int(Int64(recoveryReport.generationsRead))),
            ("tornTail", .bool(recoveryReport.tornTailCut)),
        ])
    }

    /// Records replayed between two polls of recovery's `isCancelled`.
    static let cancelPollInterval = 64

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

    /// Applies one replayed transaction to the cached pages.
    private func apply(_ ops: [LogOperation], place: String, established: inout Set<UInt64>) throws {
        defer { cache.endOperation() }
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
            case .pageImage(let dbid, let pgno, let hs, let hl, let bytes):
                let db = try replayDatabase(dbid, place)
                guard hs + hl <= db.pageSize, bytes.count == db.pageSize - hl else {
                    throw JetError(.logReadVerifyFailure, "page image of page \(pgno) at \(place) has the wrong size")
                }
                let f = try cache.cached(dbid, pgno).map { cache.endOperation(); return $0 } ?? cache.create(dbid, pgno)
                bytes.withUnsafeBytes { b in
                    f.buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[0..<hs]))
                    (f.buffer.baseAddress! + hs).initializeMemory(as: UInt8.self, repeating: 0, count: hl)
                    (f.buffer.baseAddress! + hs + hl).copyMemory(from: b.baseAddress! + hs, byteCount: db.pageSize - hs - hl)
                }
                f.dirty = true
                f.lastLoggedEnd = 0
                established.insert(PageFrame.key(dbid, pgno))
                if pgno >= db.header.pageCount { db.header.pageCount = pgno + 1 }
            case .pageRanges(let dbid, let pgno, let prev, let ranges):
                let db = try replayDatabase(dbid, place)
                let f = try cache.fetch(dbid, pgno)
                guard f.dbtime == prev else {
                    throw JetError(.logReadVerifyFailure,
                                   "the log at \(place) changes page \(pgno) of \(db.name) from dbtime \(prev), "
                                       + "but the page is at dbtime \(f.dbtime)\(established.contains(f.key) ? "" : " on disk"); "
                                           + "the log and database do not belong together: restore from a backup")
                }
                for (o, bytes) in ranges {
                    guard o + bytes.count <= db.pageSize else {
                        throw JetError(.logReadVerifyFailure, "a change of page \(pgno) at \(place) runs past the page's end")
                    }
                    bytes.withUnsafeBytes { (f.buffer.baseAddress! + o).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                }
                f.dirty = true
                f.lastLoggedEnd = 0
            }
        }
    }

    private func replayDatabase(_ dbid: UInt16, _ place: String) throws -> DatabaseFile {
        guard let db = databases[dbid] else {
            throw JetError(.logReadVerifyFailure, "the log at \(place) changes database id \(dbid), "
                + "which is not attached and was never created in the log being replayed; its file is missing: restore from a backup")
        }
        return db
    }
}
