/// One change in a commit.
public enum Mutation: Sendable {
    case put(database: String, key: [UInt8], value: [UInt8])
    case delete(database: String, key: [UInt8])
}

extension Instance {
    public static let maxKeyLength = BTree.maxKeyLength
    public static let maxValueLength = BTree.maxValueLength

    static func checkKey(_ key: [UInt8]) throws {
        guard !key.isEmpty, key.count <= BTree.maxKeyLength else {
            throw JetError(.invalidParameter, "a key must be 1 to \(BTree.maxKeyLength) bytes; this one is \(key.count)")
        }
    }

    /// Applies the operations atomically; durable when it returns. Returns, for each
    /// operation, whether it found its key (a put that replaced, a delete that removed).
    @discardableResult
    public func commit(_ operations: [Mutation]) throws -> [Bool] { try commitTimed(operations).found }

    /// `commit`, also returning the commit time its log record carries (µs since the epoch:
    /// what a stop at a time compares); nil when nothing changed or the instance has no log.
    @discardableResult
    public func commitTimed(_ operations: [Mutation]) throws -> (found: [Bool], time: UInt64?) {
        for op in operations {
            switch op {
            case .put(_, let k, let v):
                try Self.checkKey(k)
                guard v.count <= BTree.maxValueLength else {
                    throw JetError(.invalidParameter, "a value may be at most \(BTree.maxValueLength) bytes; this one is \(v.count)")
                }
            case .delete(_, let k): try Self.checkKey(k)
            }
        }
        var results: [Bool] = []
        let time = try loggedTransaction(prepare: {
            // Unknown databases are refused before anything changes.
            for op in operations {
                switch op {
                case .put(let name, _, _), .delete(let name, _): _ = try database(named: name)
                }
            }
        }) {
            for op in operations {
                switch op {
                case .put(let name, let k, let v):
                    let tree = BTree(db: try database(named: name), cache: cache, splitsCarryCells: databaseCopyRunning)
                    results.append(try k.withUnsafeBytes { kb in try v.withUnsafeBytes { vb in try tree.put(kb, vb) } })
                case .delete(let name, let k):
                    let tree = BTree(db: try database(named: name), cache: cache, splitsCarryCells: databaseCopyRunning)
                    results.append(try k.withUnsafeBytes { try tree.delete($0) })
                }
                cache.endOperation()
            }
        }
        return (results, time)
    }

    /// Runs `change` under the engine lock as one logged transaction, checkpoints when the
    /// log has grown past the checkpoint depth, and waits — outside the lock, so committers
    /// share fsyncs — until the transaction is durable. `prepare` runs first under the same
    /// lock and may refuse with nothing changed; an error inside `change` poisons the
    /// instance, since memory may then be ahead of the log. Returns the transaction's commit
    /// time (nil if nothing was logged).
    @discardableResult
    func loggedTransaction(prepare: () throws -> Void = {}, _ change: () throws -> Void) throws -> UInt64? {
        engine.lock()
        do {
            try checkUsable(writing: true)
            try prepare()
        } catch {
            engine.unlock()
            throw error
        }
        let end: LogPosition?
        let time: UInt64?
        do {
            try change()
            end = try logTransactionLocked()
            // Under the lock the last commit time is this transaction's.
            time = end == nil ? nil : lastCommitTime
            if let log, end != nil, logBytes(from: checkpoint.position, to: log.position) > parameters.checkpointDepth {
                try checkpointLocked()
            }
        } catch {
            poison(error)
            engine.unlock()
            throw error
        }
        engine.unlock()
        if let end, let log { try log.waitDurable(end) }
        return time
    }

    /// Log bytes between two positions (generations counted at the current file size).
    func logBytes(from a: LogPosition, to b: LogPosition) -> Int {
        guard b > a else { return 0 }
        let gens = Int(b.generation) - Int(a.generation)
        return gens * parameters.logFileSize + Int(b.offset) - Int(a.offset)
    }

    /// The commit time of the next transaction: the clock, but never before the last one, so
    /// the log's commit times rise with its positions (a stop at a time is a prefix of the log).
    func nextCommitTime() -> UInt64 {
        lastCommitTime = max(lastCommitTime, Clock.microsecondsSinceEpoch())
        return lastCommitTime
    }

    /// Bumps the dbtime of every database the transaction changed (logging the new allocation
    /// fields on its page 0), stamps every changed page with it, and appends the log record:
    /// each page's changes as made, with the dbtime it had before. Returns the log end
    /// position to wait for, nil if nothing changed.
    func logTransactionLocked() throws -> LogPosition? {
        guard !cache.transactionFrames.isEmpty else { return nil }
        var touched = Set<UInt16>()
        for f in cache.transactionFrames where f.redoCount > 0 { touched.insert(f.dbid) }
        var b = LogPayloadBuilder(commitTime: log == nil ? 0 : nextCommitTime())
        var afterOf: [UInt16: UInt64] = [:]
        for dbid in touched.sorted() {
            let db = try database(dbid)
            db.header.dbtime += 1
            let h = try cache.fetch(dbid, PageFormat.headerPage)
            cache.beginChange(h)
            try h.log(.allocation(pageCount: db.header.pageCount, root: db.header.rootPage,
                                  freeListHead: db.header.freeListHead, freeCount: db.header.freeCount), into: cache.redo)
            b.dbtime(dbid: dbid, db.header.dbtime)
            afterOf[dbid] = db.header.dbtime
        }
        for f in cache.transactionFrames where f.redoCount > 0 {
            let after = afterOf[f.dbid]!
            guard f.baseDbtime < after else {
                throw JetError(.databaseCorrupted, "page \(f.pgno) of \(try database(f.dbid).path) has dbtime \(f.baseDbtime), past its database's \(after - 1); check the instance's pages and restore from a backup")
            }
            PageChange.stamp(f.buffer, pgno: f.pgno, dbtime: after)
        }
        // The changes in the order they were made (a page may have several groups).
        for run in cache.redo.runs {
            let f = run.frame
            cache.redo.withChanges(of: run) {
                b.page(dbid: f.dbid, pgno: f.pgno, before: f.baseDbtime, after: afterOf[f.dbid]!, count: run.count, changes: $0)
            }
        }
        guard let log, !touched.isEmpty else {
            cache.endTransaction(loggedEnd: nil)
            cache.endOperation()
            return nil
        }
        let (_, end) = try log.append(b.w.bytes)
        cache.endTransaction(loggedEnd: end.rawValue)
        cache.endOperation()
        return end
    }

    // MARK: Reading

    public func get(_ database: String, _ key: [UInt8]) throws -> [UInt8]? {
        try Self.checkKey(key)
        engine.lock()
        defer { engine.unlock() }
        try checkUsable(writing: false)
        defer { cache.endOperation() }
        let tree = BTree(db: try self.database(named: database), cache: cache)
        return try key.withUnsafeBytes { try tree.get($0) }
    }

    /// Records of `database` in key order, optionally only those starting with `prefix`,
    /// at most `limit`. Memory stays flat: records are read in batches under the engine lock
    /// and handed to `body` outside it. `body` returns false to stop.
    public func scan(_ database: String, prefix: [UInt8] = [], limit: Int = .max,
                     _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
        var after: [UInt8]?
        var remaining = limit
        while remaining > 0 {
            var batch: [([UInt8], [UInt8])] = []
            try engine.withLock {
                try checkUsable(writing: false)
                defer { cache.endOperation() }
                let tree = BTree(db: try self.database(named: database), cache: cache)
                _ = try tree.scan(after: after, prefix: prefix, limit: min(remaining, 4096), maxBytes: 4 << 20) { k, v in
                    batch.append((k, v))
                }
            }
            if batch.isEmpty { return }
            for (k, v) in batch {
                if try !body(k, v) { return }
            }
            remaining -= batch.count
            after = batch.last!.0
        }
    }
}
