import Testing
@testable import JetStore

/// Random operations against the B+tree and a plain dictionary agree, across
/// close/reopen and crash/recover, with splits, overflow values and page reuse.
@Suite struct BTreeModelTests {
    @Test(arguments: [1, 2, 3])
    func randomOperationsMatchModel(seed: UInt64) throws {
        let fs = try makeMemoryInstance()
        var model: [[UInt8]: [UInt8]] = [:]
        var rng = SplitMix64(seed: seed)
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        for round in 0..<12 {
            for _ in 0..<60 {
                var ops: [Mutation] = []
                for _ in 0..<Int(rng.next() % 20 + 1) {
                    let k = key(Int(rng.next() % 1500))
                    if rng.next() % 4 == 0 {
                        ops.append(.delete(database: "db", key: k))
                        model[k] = nil
                    } else {
                        let size = rng.next() % 10 == 0 ? Int(rng.next() % 20000) : Int(rng.next() % 200)
                        let v = value(Int(rng.next() % 1000), round, size: size)
                        ops.append(.put(database: "db", key: k, value: v))
                        model[k] = v
                    }
                }
                try inst.commit(ops)
            }
            #expect(try allRecords(inst) == model)
            for _ in 0..<20 {
                let k = key(Int(rng.next() % 1500))
                #expect(try inst.get("db", k) == model[k])
            }
            switch round % 3 {
            case 0:
                try inst.close()
            default:
                // Crash: lose whatever was not synced; committed work must survive.
                inst = try { () throws -> Instance in
                    fs.crash(afterOperations: 0)
                    try? inst.close()
                    fs.reboot(round % 3 == 1 ? .dropUnsynced : .tornPrefix(seed: seed &+ UInt64(round)))
                    return inst
                }()
            }
            inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
            #expect(try allRecords(inst) == model, "round \(round)")
        }
        try inst.close()
    }

    @Test func rewritingSameKeysDoesNotGrowFile() throws {
        let fs = try makeMemoryInstance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var sizes: [Int] = []
        for round in 0..<30 {
            var ops: [Mutation] = []
            for i in 0..<50 { ops.append(.put(database: "db", key: key(i), value: value(i, round, size: i % 5 == 0 ? 9000 : 300))) }
            try inst.commit(ops)
            try inst.flushCheckpoint()
            sizes.append(fs.contents("/inst/db.edb")!.count)
        }
        try inst.close()
        #expect(sizes[29] == sizes[10], "file grew from \(sizes[10]) to \(sizes[29])")
    }
}
