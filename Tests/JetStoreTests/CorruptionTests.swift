import Testing
@testable import JetStore

/// Damage is detected with the right error, and recovery never applies a damaged record.
@Suite struct CorruptionTests {
    /// An instance with committed data whose last part lives only in the log.
    static func instanceWithLogTail() throws -> (MemoryFileSystem, [[UInt8]: [UInt8]]) {
        let fs = try makeMemoryInstance { $0.checkpointDepth = 16 << 20 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        for c in 0..<40 {
            var ops: [Mutation] = []
            for j in 0..<10 {
                let k = key(c * 10 + j), v = value(c, j, size: 300)
                ops.append(.put(database: "db", key: k, value: v)); model[k] = v
            }
            try inst.commit(ops)
        }
        // Crash: nothing flushed to the database since the checkpoint; all in the log.
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        return (fs, model)
    }

    static func flip(_ fs: MemoryFileSystem, _ path: String, _ offset: Int) {
        var b = fs.contents(path)!
        b[offset] ^= 0x20
        fs.setContents(path, b)
    }

    static func openError(_ fs: MemoryFileSystem) -> JetError? {
        do { let i = try Instance.open(at: "/inst", fs: fs, owner: "t"); _ = try allRecords(i); try i.close(); return nil }
        catch let e as JetError { return e } catch { return JetError(.diskIO, "\(error)") }
    }

    @Test func recoveryReplaysTheLogTail() throws {
        let (fs, model) = try Self.instanceWithLogTail()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.recoveryReport.transactionsReplayed >= 40)
        #expect(try allRecords(inst) == model)
        try inst.close()
    }

    @Test func damagedRecordInAnArchivedGenerationStopsRecovery() throws {
        let (fs, _) = try Self.instanceWithLogTail()
        let gens = try fs.list("/inst").filter { FileNames.parseArchivedLog($0) != nil }
        #expect(!gens.isEmpty)
        Self.flip(fs, "/inst/" + gens.last!, LogFormat.headerSize + 40)
        #expect(Self.openError(fs)?.code == .logReadVerifyFailure)
    }

    @Test func damagedRecordInTheMiddleOfTheCurrentGenerationIsNotATornTail() throws {
        let (fs, _) = try Self.instanceWithLogTail()
        let g = try LogReader.parse(fs.contents("/inst/edb.log")!, path: "edb.log")
        #expect(g.fragments.count >= 2)
        Self.flip(fs, "/inst/edb.log", g.fragments[0].payload.lowerBound + 5)
        #expect(Self.openError(fs)?.code == .logReadVerifyFailure)
    }

    @Test func tornTailOfTheCurrentGenerationIsCutOff() throws {
        let (fs, model) = try Self.instanceWithLogTail()
        let g = try LogReader.parse(fs.contents("/inst/edb.log")!, path: "edb.log")
        let last = g.fragments.last!
        // Tear the last record: its second half never reached the disk.
        var b = fs.contents("/inst/edb.log")!
        for k in (last.payload.lowerBound + last.payload.count / 2)..<last.payload.upperBound { b[k] = 0 }
        fs.setContents("/inst/edb.log", b)
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.recoveryReport.tornTailCut)
        let got = try allRecords(inst)
        // Every commit but possibly the torn last one; never part of it.
        #expect(got.count == model.count || got.count == model.count - 10)
        for (k, v) in got { #expect(model[k] == v) }
        try inst.close()
    }

    @Test func damagedLogHeaderAndForeignAndMissingGenerations() throws {
        var (fs, _) = try Self.instanceWithLogTail()
        Self.flip(fs, "/inst/edb.log", 20)
        #expect(Self.openError(fs)?.code == .logReadVerifyFailure)
        // A generation of another instance in place of ours.
        (fs, _) = try Self.instanceWithLogTail()
        let other = try makeMemoryInstance()
        let oi = try Instance.open(at: "/inst", fs: other, owner: "t")
        for c in 0..<30 { try oi.commit([.put(database: "db", key: key(c), value: value(c, 0, size: 3000))]) }
        try oi.close()
        let gens = try fs.list("/inst").filter { FileNames.parseArchivedLog($0) != nil }.sorted()
        let ogens = try other.list("/inst").filter { FileNames.parseArchivedLog($0) != nil }.sorted()
        fs.setContents("/inst/" + gens.last!, other.contents("/inst/" + ogens.first!)!)
        #expect([.badLogSignature, .logReadVerifyFailure].contains(Self.openError(fs)?.code))
        // A missing generation.
        (fs, _) = try Self.instanceWithLogTail()
        let g2 = try fs.list("/inst").filter { FileNames.parseArchivedLog($0) != nil }.sorted()
        try fs.remove("/inst/" + g2.last!)
        #expect(Self.openError(fs)?.code == .missingLogFile)
    }

    @Test func checkpointCopiesAndDatabaseHeaderShadow() throws {
        let (fs, model) = try Self.instanceWithLogTail()
        // One damaged copy of edb.chk: the other is used and the damaged one rewritten.
        Self.flip(fs, "/inst/edb.chk", 20)
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(!inst.repairs.isEmpty)
        #expect(try allRecords(inst) == model)
        try inst.close()
        // Both copies damaged.
        Self.flip(fs, "/inst/edb.chk", 20)
        Self.flip(fs, "/inst/edb.chk", Checkpoint.copySize + 20)
        #expect(Self.openError(fs)?.code == .checkpointCorrupt)
        Self.flip(fs, "/inst/edb.chk", 20)
        Self.flip(fs, "/inst/edb.chk", Checkpoint.copySize + 20)
        // Page 0 damaged: the shadow is used and page 0 rewritten.
        Self.flip(fs, "/inst/db.edb", 300)
        inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.repairs.contains { $0.contains("shadow") })
        #expect(try allRecords(inst) == model)
        try inst.close()
    }

    @Test func damagedDataPageFailsReadsWithTheFileAndPage() throws {
        let fs = try makeMemoryInstance()
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        for c in 0..<300 { try inst.commit([.put(database: "db", key: key(c), value: value(c, 0, size: 200))]) }
        try inst.close()
        Self.flip(fs, "/inst/db.edb", 4 * 4096 + 999)
        inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        do {
            _ = try allRecords(inst)
            Issue.record("a damaged page was read without error")
        } catch let e as JetError {
            #expect(e.code == .readVerifyFailure && e.message.contains("page 4") && e.message.contains("db.edb"))
        }
        try? inst.close()
    }

    /// Pages torn by a crash in the middle of their writes (half new, half garbage) are put
    /// back from the doublewrite file, where their copies were synced before the writes began,
    /// and redo brings them forward. ESE cannot do this; format 3 did it with page images in
    /// the log.
    @Test func tornPageWriteIsRepairedByRecovery() throws {
        let fs = try makeMemoryInstance { $0.checkpointDepth = 16 << 20 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        for c in 0..<200 {
            let k = key(c), v = value(c, 1, size: 200)
            try inst.commit([.put(database: "db", key: k, value: v)]); model[k] = v
        }
        try inst.flushCheckpoint()
        // Change every leaf after the checkpoint (each holds keys with c % 3 == 0).
        for c in 0..<200 where c % 3 == 0 {
            let k = key(c), v = value(c, 2, size: 200)
            try inst.commit([.put(database: "db", key: k, value: v)]); model[k] = v
        }
        // The next checkpoint writes the pages, then the machine stops before edb.chk moves.
        fs.crash(afterOperations: 12)
        _ = try? inst.flushCheckpoint()
        try? inst.close()
        fs.reboot(.tornPrefix(seed: 5))
        // Tear every leaf page on disk: its second half is garbage.
        var b = fs.contents("/inst/db.edb")!
        var torn = 0
        for pg in 2..<(b.count / 4096) where b[pg * 4096 + PageFormat.typeOffset] == PageFormat.PageType.leaf.rawValue {
            for k in (pg * 4096 + 2048)..<((pg + 1) * 4096) { b[k] = UInt8(truncatingIfNeeded: k &* 31) }
            torn += 1
        }
        fs.setContents("/inst/db.edb", b)
        #expect(torn > 3)
        let reopened = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(reopened.recoveryReport.pagesRepaired >= torn)
        #expect(reopened.recoveryReport.transactionsReplayed > 0)
        #expect(try allRecords(reopened) == model)
        try reopened.close()
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        #expect(report.ok, "\(report.problems)")
    }

    @Test func loggingOffLeavesDirtyDatabaseRefused() throws {
        let fs = try makeMemoryInstance { $0.loggingEnabled = false }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        try inst.commit([.put(database: "db", key: [1], value: [2])])
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        #expect(Self.openError(fs)?.code == .databaseDirtyShutdown)
    }
}
