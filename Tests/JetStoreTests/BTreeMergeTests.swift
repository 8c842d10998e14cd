import Testing
import Foundation
@testable import JetStore

/// Leaves that deletes leave less than a quarter full are merged with a sibling
/// (`BTree.mergeIfRoom`): their pages go back to the free list and are reused, every record
/// stays readable in key order, and merges — logged as the cells they move — are redone after
/// a crash, at every I/O point, and in a copy taken while they happen.
@Suite struct BTreeMergeTests {
    /// Pages of the database in use: neither the header nor on the free list.
    static func pagesInUse(_ inst: Instance, _ db: String = "db") throws -> Int {
        let h = try header(inst, db)
        return Int(h.pageCount) - Int(h.freeCount)
    }

    /// The database's header as the engine holds it (read under its lock).
    static func header(_ inst: Instance, _ db: String = "db") throws -> DatabaseHeader {
        try inst.engine.withLock { try inst.database(named: db).header }
    }

    /// Keys 0..<n in a scattered order, values of 150 bytes: a few hundred leaves.
    static func load(_ inst: Instance, _ n: Int, version: Int, model: inout [[UInt8]: [UInt8]]) throws {
        var rng = SplitMix64(seed: 7)
        var keys = Array(0..<n)
        keys.shuffle(using: &rng)
        for chunk in stride(from: 0, to: n, by: 100) {
            var ops: [Mutation] = []
            for i in keys[chunk..<min(n, chunk + 100)] {
                let v = value(i, version, size: 150)
                ops.append(.put(database: "db", key: key(i), value: v))
                model[key(i)] = v
            }
            try inst.commit(ops)
        }
    }

    /// Deletes nine keys of every ten, in a scattered order, `perCommit` at a time.
    static func thin(_ inst: Instance, _ n: Int, perCommit: Int, model: inout [[UInt8]: [UInt8]]) throws {
        var rng = SplitMix64(seed: 11)
        var victims = (0..<n).filter { $0 % 10 != 0 }
        victims.shuffle(using: &rng)
        for chunk in stride(from: 0, to: victims.count, by: perCommit) {
            var ops: [Mutation] = []
            for i in victims[chunk..<min(victims.count, chunk + perCommit)] {
                ops.append(.delete(database: "db", key: key(i)))
                model[key(i)] = nil
            }
            try inst.commit(ops)
        }
    }

    /// Without merges, deleting nine records of ten at random empties almost no leaf: the
    /// database would keep all its pages, each a tenth full. Scans cross the merged leaves in
    /// order, and later inserts take the freed pages.
    @Test func sparseLeavesAreMergedAndTheirPagesReused() throws {
        let fs = try makeMemoryInstance()
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.load(inst, 6000, version: 0, model: &model)
        let full = try Self.pagesInUse(inst)
        try Self.thin(inst, 6000, perCommit: 40, model: &model)
        let thinned = try Self.pagesInUse(inst)
        #expect(thinned * 3 < full, "pages in use: \(full) loaded, \(thinned) after deleting 90 % of the records")
        #expect(try allRecords(inst) == model)
        #expect(model.count == 600)
        // A scan crosses the merged leaves in key order, each record once.
        var seen: [[UInt8]] = []
        try inst.scan("db") { k, _ in seen.append(k); return true }
        #expect(seen == model.keys.sorted { Node.compare($0.withUnsafeBytes { $0 }, $1.withUnsafeBytes { $0 }) < 0 })
        // The pages merged away are reused: loading the deleted keys again grows the file
        // by less than half what the first load took.
        let pageCount = try Int(Self.header(inst).pageCount)
        try Self.load(inst, 6000, version: 1, model: &model)
        let grown = try Int(Self.header(inst).pageCount) - pageCount
        #expect(grown * 2 < full, "the reload added \(grown) pages to \(pageCount); the first load used \(full)")
        #expect(try allRecords(inst) == model)
        try inst.close()
        inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        #expect(try allRecords(inst) == model)
        try inst.close()
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        #expect(report.ok, "\(report.problems)")
    }

    /// Merges made after the last checkpoint are redone from the log alone: the crash loses
    /// every page write not synced (or tears it), and recovery gives the committed records.
    @Test(arguments: [false, true])
    func mergesAreRedoneAfterACrash(torn: Bool) throws {
        let fs = try makeMemoryInstance { p in p.cacheSize = 32 * 8192 }
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.load(inst, 4000, version: 0, model: &model)
        try inst.flushCheckpoint()
        let before = try Self.pagesInUse(inst)
        try Self.thin(inst, 4000, perCommit: 60, model: &model)
        #expect(try Self.pagesInUse(inst) * 3 < before)
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(torn ? .tornPrefix(seed: 3) : .dropUnsynced)
        inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        #expect(inst.recoveryReport.transactionsReplayed > 0)
        #expect(try allRecords(inst) == model)
        #expect(try Self.pagesInUse(inst) * 3 < before, "the merges were redone, not only the deletes")
        try inst.close()
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        #expect(report.ok, "\(report.problems)")
    }

    /// Splits and merges of the same pages between two writes of them, crashed at every I/O
    /// point: records inserted between existing ones split full leaves in their middle (a
    /// split logged as `move`, its new page written no later than its old one), then most
    /// records are deleted and the pages split moments before merge and go to the free list,
    /// and new inserts take the freed pages again, all through the suite's small cache.
    @Test func crashAtEveryIOPointWhileSplittingAndMerging() throws {
        // 200 records with even numbers committed at once; then 10 commits inserting 20 odd
        // numbers each (splits in the middle of leaves), 15 deleting 20 each (merges), and 5
        // inserting 20 new ones each (freed pages taken again), each in a scattered order.
        var seeded: [[UInt8]: [UInt8]] = [:]
        for i in stride(from: 0, to: 400, by: 2) { seeded[key(i)] = value(i, 0, size: 150) }
        let base = try CrashPointTests.base()
        do {
            let inst = try Instance.open(at: "/inst", fs: base, owner: "test")
            try inst.commit(stride(from: 0, to: 400, by: 2).map { .put(database: "db", key: key($0), value: seeded[key($0)]!) })
            try inst.close()
        }
        var rng = SplitMix64(seed: 9)
        let odd = Array(stride(from: 1, to: 400, by: 2)).shuffled(using: &rng)
        let doomed = Array(0..<400).shuffled(using: &rng).prefix(300)
        let workload: CrashPointTests.Workload = { fs, commits, models in
            CrashPointTests.commitEach(fs, commits: commits, from: seeded, models: &models) { c, model in
                let ops: [Mutation]
                switch c {
                case 0..<10:
                    ops = odd[(c * 20)..<(c * 20 + 20)].map { .put(database: "db", key: key($0), value: value($0, 1, size: 150)) }
                case 10..<25:
                    ops = doomed[doomed.startIndex + (c - 10) * 20..<doomed.startIndex + (c - 9) * 20].map { .delete(database: "db", key: key($0)) }
                default:
                    ops = (0..<20).map { .put(database: "db", key: key(1000 + c * 20 + $0), value: value($0, c, size: 150)) }
                }
                for op in ops {
                    switch op {
                    case .put(_, let k, let v): model[k] = v
                    case .delete(_, let k): model[k] = nil
                    }
                }
                return ops
            }
        }
        let commits = 30
        // What the phases do, each run alone on a clone: the deletes merge away half the
        // pages the splits made, and the last inserts take freed pages instead of growing
        // the file.
        func after(_ n: Int) throws -> (inUse: Int, pageCount: UInt32, records: [[UInt8]: [UInt8]], model: [[UInt8]: [UInt8]]) {
            let fs = base.clone()
            var models: [[[UInt8]: [UInt8]]] = []
            #expect(workload(fs, n, &models) == n)
            let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
            defer { try? inst.close() }
            return (try Self.pagesInUse(inst), try Self.header(inst).pageCount,
                    try allRecords(inst), models[n])
        }
        let (split, merged, reused) = (try after(10), try after(25), try after(commits))
        #expect(merged.inUse * 2 < split.inUse, "pages in use: \(split.inUse) after the splits, \(merged.inUse) after the deletes")
        #expect(reused.pageCount == merged.pageCount, "the file grew from \(merged.pageCount) to \(reused.pageCount) pages")
        #expect(reused.records == reused.model)
        let clean = base.clone()
        let before = clean.ioCount
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(workload(clean, commits, &models) == commits)
        let points = clean.ioCount - before
        let (covered, _) = try CrashPointTests.crashAndRecover(base, commits: commits, at: Array(1...points),
                                                               modes: CrashPointTests.modes(at:), label: "split and merge crash point",
                                                               workload: workload)
        print("split and merge crash points covered: \(covered) crashes over \(points) I/O operations")
    }

    /// A workload of merges crashed at every I/O point (`CrashPointTests`' harness: small
    /// cache, doublewrite batches, shallow checkpoint), each crash dropping what was not
    /// synced or tearing it in turn; three tearing seeds more at each point with
    /// JETBACKUP_STRESS=long.
    @Test func crashAtEveryIOPointWhileMerging() throws {
        // 300 records of 150 bytes committed at once, then commits deleting four of every
        // five keys in a scattered order, six at a time.
        var seeded: [[UInt8]: [UInt8]] = [:]
        for i in 0..<300 { seeded[key(i)] = value(i, 0, size: 150) }
        let base = try CrashPointTests.base()
        do {
            let inst = try Instance.open(at: "/inst", fs: base, owner: "test")
            try inst.commit((0..<300).map { .put(database: "db", key: key($0), value: seeded[key($0)]!) })
            try inst.close()
        }
        var rng = SplitMix64(seed: 5)
        let victims = (0..<300).filter { $0 % 5 != 0 }.shuffled(using: &rng)
        let workload: CrashPointTests.Workload = { fs, commits, models in
            CrashPointTests.commitEach(fs, commits: commits, from: seeded, models: &models) { c, model in
                victims[(c * 6)..<min(victims.count, c * 6 + 6)].map { i in
                    model[key(i)] = nil
                    return .delete(database: "db", key: key(i))
                }
            }
        }
        let commits = 40
        let clean = base.clone()
        let before = clean.ioCount
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(workload(clean, commits, &models) == commits)
        let points = clean.ioCount - before
        // The clean run merged: far fewer pages in use than before the deletes.
        let end = try Instance.open(at: "/inst", fs: clean, owner: "test")
        #expect(try allRecords(end) == models[commits])
        let start = try Instance.open(at: "/inst", fs: base.clone(), owner: "test")
        let (endPages, startPages) = (try Self.pagesInUse(end), try Self.pagesInUse(start))
        #expect(endPages * 3 < startPages * 2, "pages in use: \(startPages) before the deletes, \(endPages) after")
        try end.close()
        try start.close()
        let (covered, _) = try CrashPointTests.crashAndRecover(base, commits: commits, at: Array(1...points),
                                                               modes: CrashPointTests.modes(at:), label: "merge crash point", workload: workload)
        print("merge crash points covered: \(covered) crashes over \(points) I/O operations")
    }
}
