import Testing
import Foundation
@testable import JetStore

/// Splits logged as ESE logs them (format 5): the new page is named as made from the old
/// page's cells (`PageChange.move`), not given the cells. Redo can then rebuild the new page
/// only from the old page as it was before the split, which the engine guarantees by the
/// order it writes pages (`PageCache.splitMoved`, `writeBatches`) and, while a full backup
/// copies the files page by page, by logging the cells after all (`BTree.splitsCarryCells`).
@Suite struct SplitRedoTests {
    // MARK: Write order in the cache

    static let pageSize = 4096

    /// A cache over an empty in-memory database whose write-back records each batch.
    final class Batches: @unchecked Sendable { var written: [[UInt32]] = [] }

    static func cache(capacity: Int) throws -> (PageCache, Batches) {
        let fs = MemoryFileSystem()
        let file = try fs.open("/db.edb", .createNew)
        let header = DatabaseHeader(pageSize: UInt32(pageSize), dbid: 1, name: "db",
                                    signature: Signature(random: 1, time: 1), logSignature: Signature(random: 2, time: 2))
        let db = DatabaseFile(name: "db", path: "/db.edb", file: file, header: header)
        let batches = Batches()
        let cache = PageCache(capacity: capacity, pageSize: pageSize, database: { _ in db },
                              writeBack: { frames in batches.written.append(frames.map(\.pgno)) })
        return (cache, batches)
    }

    /// Dirty, unpinned frames for pages `pgnos`, as a committed transaction leaves them.
    static func dirty(_ cache: PageCache, _ pgnos: [UInt32]) throws -> [PageFrame] {
        var out: [PageFrame] = []
        for p in pgnos {
            let f = try cache.create(1, p)
            cache.beginChange(f)
            out.append(f)
        }
        cache.endTransaction(loggedEnd: nil)
        cache.endOperation()
        return out
    }

    /// Where each page went: batch index and place in it.
    static func place(_ batches: [[UInt32]]) -> [UInt32: (batch: Int, index: Int)] {
        var out: [UInt32: (Int, Int)] = [:]
        for (b, batch) in batches.enumerated() { for (i, p) in batch.enumerated() { out[p] = (b, i) } }
        return out
    }

    /// A page waits on the pages made from its cells, and those on theirs: each comes in the
    /// same batch or an earlier one; a chain longer than a batch is cut with the targets first.
    @Test func splitTargetsAreWrittenNoLaterThanTheirSource() throws {
        let (cache, _) = try Self.cache(capacity: 64)
        let f = try Self.dirty(cache, Array(10..<30))
        // 10 → 11 → 12 … → 19 (a chain of splits), 20 → 25 and 20 → 26.
        for k in 0..<9 { cache.splitMoved(from: f[k], to: f[k + 1]) }
        cache.splitMoved(from: f[10], to: f[15])
        cache.splitMoved(from: f[10], to: f[16])
        for limit in [3, 4, 100] {
            let batches = cache.writeBatches([f[0], f[10]] + f, limit: limit).map { $0.map(\.pgno) }
            #expect(batches.allSatisfy { $0.count <= limit })
            #expect(batches.flatMap { $0 }.sorted() == Array(10..<30), "every page once")
            let at = Self.place(batches)
            for k in 0..<9 { #expect(at[UInt32(11 + k)]!.batch <= at[UInt32(10 + k)]!.batch, "limit \(limit): \(batches)") }
            #expect(at[25]!.batch <= at[20]!.batch && at[26]!.batch <= at[20]!.batch)
        }
        // A whole group that fits stays in one batch.
        let whole = cache.writeBatches([f[10], f[1]], limit: 4).map { $0.map(\.pgno) }
        #expect(whole.contains { Set($0).isSuperset(of: [20, 25, 26]) })
    }

    /// A target already written (clean) no longer holds its source back, and a written source
    /// forgets its targets.
    @Test func aWrittenTargetNoLongerHoldsItsSourceBack() throws {
        let (cache, batches) = try Self.cache(capacity: 64)
        let f = try Self.dirty(cache, [40, 41])
        cache.splitMoved(from: f[0], to: f[1])
        #expect(f[1].needsFreshCopy)
        try cache.write([f[1]])
        #expect(cache.writeBatches([f[0]], limit: 8).map { $0.map(\.pgno) } == [[40]])
        try cache.write([f[0]])
        #expect(f[0].splitTargets.isEmpty && !f[0].dirty)
        #expect(batches.written == [[41], [40]])
    }

    /// A source whose target the open transaction holds (bytes not yet logged) is not
    /// evicted: the cache grows instead, and once the transaction ends both go out together.
    @Test func aSourceWaitingOnAPageOfTheOpenTransactionStays() throws {
        let (cache, batches) = try Self.cache(capacity: 16)
        let f = try Self.dirty(cache, [50, 51])
        cache.splitMoved(from: f[0], to: f[1])
        cache.beginChange(f[1])
        for p in UInt32(100)..<UInt32(140) { _ = try cache.create(1, p); cache.endOperation() }
        #expect(!batches.written.contains { $0.contains(50) })
        #expect(cache.count > 16 || !batches.written.contains { $0.contains(51) })
        cache.endTransaction(loggedEnd: nil)
        for p in UInt32(200)..<UInt32(240) { _ = try cache.create(1, p); cache.endOperation() }
        let at = Self.place(batches.written)
        #expect(at[50] != nil && at[51] != nil)
        #expect(at[51]!.batch <= at[50]!.batch)
    }

    // MARK: Redo

    /// Random inserts into a database a few times the cache: most splits are logged as moves.
    static func load(_ inst: Instance, _ range: Range<Int>, model: inout [[UInt8]: [UInt8]]) throws {
        var rng = SplitMix64(seed: UInt64(range.lowerBound) &+ 11)
        var batch: [Mutation] = []
        for i in range {
            let k = key(Int(rng.next() % 1_000_000))
            let v = value(i, 0, size: 120)
            batch.append(.put(database: "db", key: k, value: v))
            model[k] = v
            if batch.count == 20 { try inst.commit(batch); batch = [] }
        }
        if !batch.isEmpty { try inst.commit(batch) }
    }

    /// The changes of archived generations `gens` (whole transactions: each starts after a
    /// roll), counted by kind.
    static func changes(in fs: MemoryFileSystem, _ gens: ClosedRange<UInt32>) throws -> (moves: Int, formats: Int) {
        var moves = 0, formats = 0
        var cursor = ReplayCursor()
        for gen in gens {
            let g = try LogReader.read(fs: fs, path: "/inst/" + FileNames.archivedLog(gen))
            for (k, frag) in g.fragments.enumerated() {
                guard let payload = try cursor.feed(frag, g, firstInGeneration: k == 0) else { continue }
                for case .page(_, _, _, _, let cs) in try payload.withUnsafeBytes({ try LogTransaction.decode($0, where: "x") }).operations {
                    for c in cs {
                        if case .move = c { moves += 1 }
                        if case .format = c { formats += 1 }
                    }
                }
            }
        }
        return (moves, formats)
    }

    static func instance() throws -> MemoryFileSystem {
        try makeMemoryInstance { p in
            p.cacheSize = 24 * 4096
            p.logFileSize = 1 << 20
            p.checkpointDepth = 8 << 20
        }
    }

    /// Committed splits come back after a crash that loses every unsynced write: redo makes
    /// each new page from its old page's cells.
    @Test func splitsLoggedAsMovesAreRedoneAfterACrash() throws {
        let fs = try Self.instance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        // A database on disk larger than the cache, so redo runs in batches of three quarters
        // of the cache, with moves across batches.
        try Self.load(inst, 0..<3000, model: &model)
        try inst.flushCheckpoint()
        let first = try inst.rollLog() + 1
        try Self.load(inst, 3000..<6000, model: &model)
        #expect(try Self.changes(in: fs, first...inst.rollLog()).moves > 50)
        let again = try expectCrashRecovers(fs, inst, to: model)
        #expect(again.redoBatches > 3)
    }

    /// Pages on disk in an order the engine never writes them — every old page past its
    /// split, the new pages never written — are refused by name, not rebuilt wrong: redo
    /// cannot make a new page from an old page that no longer holds its cells.
    @Test func aNewPageWhoseOldPageIsPastTheSplitIsRefused() throws {
        let fs = try Self.instance()
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.load(inst, 0..<400, model: &model)
        try inst.flushCheckpoint()
        try inst.close()
        let before = fs.clone()
        let size = fs.contents("/inst/db.edb")!.count
        inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        let first = try inst.rollLog() + 1
        try Self.load(inst, 400..<1200, model: &model)
        #expect(try Self.changes(in: fs, first...inst.rollLog()).moves > 0)
        try inst.flushCheckpoint()
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        // The old pages as the second checkpoint wrote them, the new ones missing; the
        // checkpoint of the first, so recovery replays the second load.
        let after = Array(fs.contents("/inst/db.edb")!.prefix(size))
        #expect(after.count < fs.contents("/inst/db.edb")!.count)
        fs.setContents("/inst/db.edb", after)
        fs.setContents("/inst/edb.chk", before.contents("/inst/edb.chk")!)
        do {
            _ = try Instance.open(at: "/inst", fs: fs, owner: "t")
            Issue.record("recovery rebuilt new pages from old pages past their split")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure)
            #expect(e.message.contains("from the cells of page") && e.message.contains("is already past that split"), "\(e.message)")
        }
    }

    /// While a full backup's session copies the files, splits log their cells (the copy may
    /// take the new page before the split and the old one after it); before and after, and
    /// during an incremental's session (no pages copied), they name the old page.
    @Test func splitsCarryTheirCellsWhileAFullBackupCopies() throws {
        let fs = try Self.instance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.load(inst, 0..<500, model: &model)
        let g0 = try inst.rollLog() + 1
        let session = try inst.beginBackup(.full)
        try Self.load(inst, 500..<1500, model: &model)
        let last = try session.rollLog()
        let during = try Self.changes(in: fs, g0...last)
        #expect(during.moves == 0, "a split named its old page while the files were copied")
        #expect(during.formats > 10)
        _ = try session.complete(generations: try session.generations(through: last))
        try Self.load(inst, 1500..<2500, model: &model)
        let g1 = try inst.rollLog()
        #expect(try Self.changes(in: fs, (last + 1)...g1).moves > 10)
        let inc = try inst.beginBackup(.incremental)
        try Self.load(inst, 2500..<3500, model: &model)
        let g2 = try inc.rollLog()
        #expect(try Self.changes(in: fs, (g1 + 1)...g2).moves > 10)
        inc.abort()
        try inst.close()
        let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(try allRecords(again) == model)
        try again.close()
    }

    /// The race the backup rule is for, made to happen: the copy reads a free page, then a
    /// split takes that page as its new page and both pages reach the disk, then the copy
    /// reads the split's old page. The image holds the old page after the split and the new
    /// page before it; replay must still rebuild the new page, which only the split's own
    /// records can give (they are logged while the session copies). Without that rule (splits
    /// as moves throughout) the restore stops with the refusal of
    /// `aNewPageWhoseOldPageIsPastTheSplitIsRefused`.
    @Test func aNewPageCopiedBeforeItsSplitAndAnOldPageCopiedAfterItRestore() throws {
        let fs = try makeMemoryInstance { p in p.cacheSize = 64 * 4096 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        // Even keys in order: leaves in page order. Then the first leaf's keys deleted: it
        // leaves the tree and heads the free list, a low page.
        for i in stride(from: 0, to: 3000, by: 2) {
            try inst.commit([.put(database: "db", key: key(i), value: value(i, 0, size: 100))])
            model[key(i)] = value(i, 0, size: 100)
        }
        for i in stride(from: 0, to: 120, by: 2) {
            try inst.commit([.delete(database: "db", key: key(i))])
            model[key(i)] = nil
        }
        try inst.flushCheckpoint()
        let free = try inst.freeListHeadForTests("db")
        #expect(free >= PageFormat.firstDataPage)
        let session = try inst.beginBackup(.full)
        let db = session.databases[0]
        let ps = db.pageSize
        var image = [UInt8](repeating: 0, count: Int(db.size) + 64 * ps)
        func copy(_ pages: Range<Int>) throws -> Int {
            var got = 0
            try image.withUnsafeMutableBytes { b in
                for pg in pages {
                    let n = try session.readDatabase(db.name, at: Int64(pg * ps), into: UnsafeMutableRawBufferPointer(rebasing: b[(pg * ps)..<((pg + 1) * ps)]))
                    if n == 0 { break }
                    got += n
                }
            }
            return got
        }
        // The copy reads up to the free page, inclusive; odd keys into the last leaves then
        // split them (not appends: between existing keys), the first split taking the free
        // page; a checkpoint writes them all; the copy goes on.
        _ = try copy(0..<(Int(free) + 1))
        for i in stride(from: 2801, to: 2999, by: 2) {
            try inst.commit([.put(database: "db", key: key(i), value: value(i, 1, size: 100))])
            model[key(i)] = value(i, 1, size: 100)
        }
        #expect(try inst.freeListHeadForTests("db") != free, "the free page was not taken by a split")
        try inst.flushCheckpoint()
        let total = Int(try fs.open("/inst/db.edb", .readOnly).size()) / ps
        _ = try copy((Int(free) + 1)..<total)
        let last = try session.rollLog()
        fs.makeDirectories("/copy")
        fs.setContents("/copy/" + db.fileName, Array(image.prefix(total * ps)))
        for g in try session.generations(through: last) {
            fs.setContents("/copy/" + FileNames.archivedLog(g), try session.readLog(g, previousCreation: nil).bytes.array)
        }
        let start = session.start
        session.abort()
        try inst.close()
        fs.setContents("/copy/instance.json", fs.contents("/inst/instance.json")!)
        let sig = try Instance.readParameters(at: "/inst", fs: fs).logSignature
        try CheckpointFile.write(fs: fs, path: "/copy/edb.chk", Checkpoint(sequence: 1, logSignature: sig, position: start, time: 0))
        let restored = try Instance.open(at: "/copy", fs: fs, owner: "t", restoring: true)
        #expect(restored.recoveryReport.transactionsReplayed > 0)
        #expect(try allRecords(restored) == model)
        try restored.close()
    }

    /// Pages written in place are not durable in the order written until the next fsync: a
    /// crash may keep a split's old page and lose its new page. Here the new page is a page
    /// freed and written earlier in the same doublewrite epoch (so it already has a copy
    /// there, of its free version); the old page's write survives the crash, the new page's
    /// two writes do not. The split's new page got a fresh copy in its batch, fsynced before
    /// either was written in place, and comes back from it. (Without that copy recovery put
    /// back the free version and then refused to rebuild it from the old page.)
    @Test func aSplitsNewPageLostInPlaceComesBackFromItsFreshCopy() throws {
        let fs = try makeMemoryInstance { p in
            p.cacheSize = 256 * 4096
            p.checkpointDepth = 64 << 20
            p.doublewriteSize = 64 << 20
        }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        for i in stride(from: 0, to: 3000, by: 2) {
            try inst.commit([.put(database: "db", key: key(i), value: value(i, 0, size: 100))])
            model[key(i)] = value(i, 0, size: 100)
        }
        try inst.flushCheckpoint()
        for i in stride(from: 0, to: 120, by: 2) {
            try inst.commit([.delete(database: "db", key: key(i))])
            model[key(i)] = nil
        }
        let free = try inst.freeListHeadForTests("db")
        #expect(free >= PageFormat.firstDataPage)
        // The freed page written (copied to the doublewrite file) without a checkpoint: the epoch goes on.
        try inst.writeDirtyPagesForTests()
        for i in stride(from: 2801, to: 2999, by: 2) {
            try inst.commit([.put(database: "db", key: key(i), value: value(i, 1, size: 100))])
            model[key(i)] = value(i, 1, size: 100)
        }
        #expect(try inst.freeListHeadForTests("db") != free, "the free page was not taken by a split")
        try inst.writeDirtyPagesForTests()
        let ps = 4096
        fs.crash(afterOperations: 0)
        try? inst.close()
        // Every unsynced write of the database reached the disk but the free page's.
        fs.reboot(.selective { path, offset in !(path.hasSuffix("db.edb") && offset / ps == Int(free)) })
        let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(again.recoveryReport.pagesRepaired > 0)
        #expect(try allRecords(again) == model)
        try again.close()
    }
}

extension Instance {
    /// The head of a database's free list (the page the next allocation takes).
    func freeListHeadForTests(_ name: String) throws -> UInt32 {
        try engine.withLock { try database(named: name).header.freeListHead }
    }

    /// Writes every dirty page through the doublewrite file, as evictions do: no fsync of the
    /// database, no new epoch.
    func writeDirtyPagesForTests() throws {
        try engine.withLock {
            try log?.flush()
            try cache.write(cache.dirtyFrames())
        }
    }
}
