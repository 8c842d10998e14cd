import Testing
@testable import JetStore

/// The log holds about what was committed (physiological redo), whatever the size of the
/// database against the checkpoint depth: format 3 logged each page whole at its first change
/// after every checkpoint, and with random inserts over a database larger than the depth it
/// wrote about 16 bytes of log per byte committed.
@Suite struct LogVolumeTests {
    /// Random inserts (16-byte keys, 150-byte values) in batches of 100 into a database
    /// several times the checkpoint depth and the cache.
    static func load(_ inst: Instance, records: Range<Int>, valueSize: Int = 150, updates: Bool = false) throws -> (logical: Int, model: [[UInt8]: [UInt8]]) {
        var logical = 0
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = SplitMix64(seed: 77)
        var batch: [Mutation] = []
        for i in records {
            let n = updates && i % 2 == 0 ? Int(rng.next() % UInt64(records.lowerBound)) : i
            var g = SplitMix64(seed: UInt64(n) &* 0x9E37_79B9)
            let k = Array(String(g.next(), radix: 16).utf8).prefix(16)
            let v = value(i, 1, size: valueSize)
            batch.append(.put(database: "db", key: Array(k), value: v))
            model[Array(k)] = v
            logical += k.count + v.count
            if batch.count == 100 { try inst.commit(batch); batch = [] }
        }
        if !batch.isEmpty { try inst.commit(batch) }
        return (logical, model)
    }

    static func instance() throws -> MemoryFileSystem {
        try makeMemoryInstance { p in
            p.pageSize = 8192
            p.logFileSize = 1 << 20
            p.cacheSize = 64 * 8192
            p.checkpointDepth = 256 * 1024
        }
    }

    @Test func randomInsertsLogAboutWhatTheyCommit() throws {
        let fs = try Self.instance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        let before = inst.logBytesAppended
        let (logical, model) = try Self.load(inst, records: 0..<20000)
        let ratio = Double(inst.logBytesAppended - before) / Double(logical)
        // About 3.4 MB committed into a database of about 5 MB: 13 times the depth, 8 times the cache.
        #expect(fs.contents("/inst/db.edb")!.count > 12 * 256 * 1024)
        // Format 4 logged a split's moved cells: 1.84 here. Format 5 names their page: 1.08.
        #expect(ratio < 1.3, "log bytes ÷ logical bytes = \(ratio)")
        print("random inserts: log bytes ÷ logical bytes = \(ratio)")
        try inst.close()
        let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(try allRecords(again) == model)
        try again.close()
    }

    @Test func updatesOfExistingRecordsLogAboutWhatTheyCommit() throws {
        let fs = try Self.instance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var (_, model) = try Self.load(inst, records: 0..<10000)
        let before = inst.logBytesAppended
        let (logical, changed) = try Self.load(inst, records: 10000..<20000, updates: true)
        model.merge(changed) { $1 }
        let ratio = Double(inst.logBytesAppended - before) / Double(logical)
        #expect(ratio < 1.3, "log bytes ÷ logical bytes = \(ratio)")
        print("updates: log bytes ÷ logical bytes = \(ratio)")
        // A crash: every commit is back from the log alone.
        try expectCrashRecovers(fs, inst, to: model)
    }
}
