import Testing
import Foundation
@testable import JetStore

/// Spare generation files (`LogSpares`): a truncation renames what it removes, up to a limit,
/// and rolls overwrite spares; a spare's old records are never read as log.
@Suite struct LogSparesTests {
    static func spares(_ fs: MemoryFileSystem) throws -> [String] {
        try fs.list("/inst").filter(FileNames.isSpareLog).sorted()
    }

    static func commit(_ inst: Instance, _ range: Range<Int>, version: Int, into model: inout [[UInt8]: [UInt8]]) throws {
        for i in range {
            let v = value(i, version, size: 300)
            try inst.commit([.put(database: "db", key: key(i), value: v)])
            model[key(i)] = v
        }
    }

    @Test func spareNamesAreNotGenerations() {
        #expect(FileNames.spareLog(0x2A) == "edbres0000002A.jrs")
        #expect(FileNames.isSpareLog(FileNames.spareLog(.max)))
        for name in ["edbres0000002a.jrs", "edbres2A.jrs", "edb0000002A.log", "edbres0000002A.log", "edbres0000002A.jrs.tmp", "edbtmp.log"] {
            #expect(!FileNames.isSpareLog(name), "\(name)")
        }
        #expect(FileNames.parseArchivedLog(FileNames.spareLog(0x2A)) == nil)
        #expect(LogSpares.limit(checkpointDepth: 128 << 20, logFileSize: 1 << 20) == 32)
        #expect(LogSpares.limit(checkpointDepth: 256 << 10, logFileSize: 64 << 10) == 4)
        #expect(LogSpares.limit(checkpointDepth: 1 << 30, logFileSize: 1 << 20) == 64)
    }

    /// A truncation keeps `limit` spares (the oldest generations it removes) and deletes the
    /// rest; the generations left have no gap; the next rolls overwrite spares instead of
    /// creating files; recovery after a crash reads only what was written since.
    @Test func truncationKeepsSparesAndRollsOverwriteThem() throws {
        let fs = try makeMemoryInstance()  // 64 KiB generations, 256 KiB checkpoint depth: 4 spares
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.commit(inst, 0..<2000, version: 0, into: &model)
        let before = try inst.archivedGenerations()
        #expect(before.count > 8)
        let removed = try #require(try inst.truncateLogs())
        #expect(try Self.spares(fs) == removed.prefix(4).map(FileNames.spareLog))
        #expect(try Inspection.spareLogs("/inst", fs: fs) == (4, 4 * 64 * 1024))
        let left = try inst.archivedGenerations()
        #expect(left.allSatisfy { $0 > removed.upperBound })
        let gens = try Inspection.generations("/inst", fs: fs, parameters: inst.parameters)
        #expect(gens.allSatisfy { !$0.missing && $0.problem == nil })
        #expect(!gens.contains { FileNames.isSpareLog($0.file) })

        // Two rolls: each takes a spare (renamed to the prepared name) instead of a new file.
        fs.traceIO = true
        let start = fs.ioTrace.count
        let first = inst.log!.currentGeneration
        while inst.log!.currentGeneration < first + 2 {
            try Self.commit(inst, 0..<50, version: 1, into: &model)
        }
        fs.traceIO = false
        #expect(try Self.spares(fs).count == 2)
        let taken = fs.ioTrace.dropFirst(start).filter { $0.kind == .rename && FileNames.isSpareLog(FilePaths.lastComponent($0.path)) }
        #expect(taken.count == 2)
        try expectCrashRecovers(fs, inst, to: model)
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        #expect(report.ok)
    }

    /// A spare full of valid records of an old generation, overwritten by a roll that then
    /// logs a few small transactions: a crash right after reads none of the old records (a
    /// replay of them would put back values overwritten since).
    @Test func aSparesOldRecordsAreNeverReplayed() throws {
        let fs = try makeMemoryInstance { $0.checkpointDepth = 1 << 20 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.commit(inst, 0..<600, version: 0, into: &model)
        _ = try inst.truncateLogs()
        #expect(try Self.spares(fs).count > 0)
        // Newer values for the same keys, then roll into a spare and commit just one.
        try Self.commit(inst, 0..<600, version: 1, into: &model)
        let g = inst.log!.currentGeneration
        while inst.log!.currentGeneration == g { try Self.commit(inst, 0..<5, version: 2, into: &model) }
        try Self.commit(inst, 7..<8, version: 3, into: &model)
        let made = try LogReader.read(fs: fs, path: "/inst/" + FileNames.currentLog)
        guard case .clean(let end) = made.end else { Issue.record("edb.log ends in \(made.end)"); return }
        #expect(made.bytes[end...].allSatisfy { $0 == 0 }, "a spare's old records left after the new ones")
        try expectCrashRecovers(fs, inst, to: model)
        let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(try allRecords(again) == model)
        try again.close()
    }

    /// A file left at the prepared name holding an old generation's records under the header
    /// of the very generation the next roll makes (a crash while a spare was rewritten: its
    /// header reached the disk, its zeros did not) is rewritten by that roll, not taken as it
    /// is: its old records would be read as the new generation's.
    @Test func aPreparedFileWithOldRecordsIsRewritten() throws {
        let fs = try makeMemoryInstance()
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.commit(inst, 0..<1500, version: 0, into: &model)
        let old = try #require(try inst.archivedGenerations().first)
        try inst.close()
        let current = try #require(fs.contents("/inst/" + FileNames.currentLog))
        let h = try current.withUnsafeBytes { try LogFormat.Header.decode($0, file: "edb.log") }
        var bytes = try #require(fs.contents("/inst/" + FileNames.archivedLog(old)))
        let next = LogFormat.Header(generation: h.generation + 1, signature: h.signature, creationTime: h.creationTime + 1,
                                    previousCreationTime: h.creationTime, fileSize: h.fileSize)
        bytes.replaceSubrange(0..<LogFormat.headerSize, with: next.encode())
        fs.setContents("/inst/" + FileNames.preparedLog, bytes)
        inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(try allRecords(inst) == model)
        let g = inst.log!.currentGeneration
        while inst.log!.currentGeneration == g { try Self.commit(inst, 0..<40, version: 1, into: &model) }
        try Self.commit(inst, 0..<3, version: 2, into: &model)
        // The generation made from that file holds its own records, then zeros.
        let made = try LogReader.read(fs: fs, path: "/inst/" + FileNames.currentLog)
        #expect(made.header.generation == g + 1)
        guard case .clean(let end) = made.end else { Issue.record("generation \(g + 1) ends in \(made.end)"); return }
        #expect(made.bytes[end...].allSatisfy { $0 == 0 }, "old records left after the new ones")
        try expectCrashRecovers(fs, inst, to: model)
    }

    /// Spares of another size (log-file-size changed since they were kept) become generations
    /// of the size the instance now uses, larger or smaller, and read back whole.
    @Test(arguments: [64 * 1024, 256 * 1024])
    func aSpareOfAnotherSizeBecomesAGenerationOfTheCurrentSize(newSize: Int) throws {
        let fs = try makeMemoryInstance { $0.logFileSize = 128 * 1024; $0.checkpointDepth = 512 * 1024 }
        var inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try Self.commit(inst, 0..<3000, version: 0, into: &model)
        _ = try inst.truncateLogs()
        try inst.close()
        #expect(try Self.spares(fs).count == 4)
        var p = try Instance.readParameters(at: "/inst", fs: fs)
        p.logFileSize = newSize
        try p.save(fs: fs, path: "/inst/" + FileNames.parameters)
        inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        let g = inst.log!.currentGeneration
        while inst.log!.currentGeneration < g + 3 { try Self.commit(inst, 0..<40, version: 1, into: &model) }
        #expect(try Self.spares(fs).count == 1)
        for gen in (g + 1)...(g + 2) {
            let made = try LogReader.read(fs: fs, path: "/inst/" + FileNames.archivedLog(gen))
            #expect(made.bytes.count == newSize && Int(made.header.fileSize) == newSize)
            guard case .clean = made.end else { Issue.record("generation \(gen) ends in \(made.end)"); continue }
        }
        try expectCrashRecovers(fs, inst, to: model)
    }

    /// Crash at every I/O point of a workload with circular logging (every checkpoint retires
    /// generations, rolls overwrite spares): each recovery holds what returned, every page and
    /// every log record checks.
    @Test func crashAtEveryIOPointWithSpares() throws {
        let base = try makeMemoryInstance { p in
            p.logFileSize = 64 * 1024
            p.checkpointDepth = 96 * 1024
            p.cacheSize = 24 * 4096
            p.doublewriteSize = 96 * 1024
            p.circularLogging = true
        }
        let commits = 80
        let clean = base.clone()
        clean.traceIO = true
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(CrashPointTests.workload(clean, commits: commits, models: &models) == commits)
        let trace = clean.ioTrace
        #expect(trace.contains { $0.kind == .rename && FileNames.isSpareLog(FilePaths.lastComponent($0.path)) },
                "no roll overwrote a spare")
        let points = trace.count
        let long = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long"
        let (covered, _) = try CrashPointTests.crashAndRecover(base, commits: commits, at: Array(1...points), modes: { point in
            long ? [.dropUnsynced, .tornPrefix(seed: UInt64(point)), .tornPrefix(seed: UInt64(point * 5 + 1))]
                 : [point % 2 == 0 ? .dropUnsynced : .tornPrefix(seed: UInt64(point))]
        }, label: "spare crash point")
        print("spare crash points: \(covered) crashes over \(points) I/O operations")
    }
}

/// A roll fsyncs the finished generation only when it holds bytes not known to be durable
/// (`LogWriter`'s `unsynced`): after a clean shutdown nothing needs it, after a crash whose
/// records recovery replayed it is fsynced before the generation is archived.
@Suite struct LogRollSyncTests {
    static func logSyncs(_ fs: MemoryFileSystem, since start: Int) -> Int {
        fs.ioTrace.dropFirst(start).filter { $0.kind == .sync && $0.path == "/inst/" + FileNames.currentLog }.count
    }

    @Test func aRollAfterACleanOpenDoesNotFsyncTheLogAgainAndLosesNothing() throws {
        let fs = try makeMemoryInstance()
        var model: [[UInt8]: [UInt8]] = [:]
        do {
            let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
            try LogSparesTests.commit(inst, 0..<60, version: 0, into: &model)
            try inst.close()
        }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.recoveryReport.transactionsReplayed == 0)
        fs.traceIO = true
        let start = fs.ioTrace.count
        _ = try inst.rollLog()
        #expect(Self.logSyncs(fs, since: start) == 0, "the clean log was fsynced again")
        // A commit after the roll is fsynced as always (the new generation's file was opened
        // at its prepared name).
        let afterRoll = fs.ioTrace.count
        try LogSparesTests.commit(inst, 60..<61, version: 0, into: &model)
        #expect(fs.ioTrace.dropFirst(afterRoll).contains { $0.kind == .sync && $0.path.hasSuffix(FileNames.preparedLog) })
        fs.traceIO = false
        // A crash now (nothing closed): every commit is there.
        let crashed = fs.clone()
        crashed.reboot(.dropUnsynced)
        try inst.close()
        let again = try Instance.open(at: "/inst", fs: crashed, owner: "t")
        for (k, v) in model { #expect(try again.get("db", k) == v) }
        try again.close()
    }

    @Test func aLogRecoveryReplayedIsFsyncedBeforeItIsArchived() throws {
        let base = try makeMemoryInstance()
        var model: [[UInt8]: [UInt8]] = [:]
        let killed: MemoryFileSystem
        do {
            let inst = try Instance.open(at: "/inst", fs: base, owner: "t")
            try LogSparesTests.commit(inst, 0..<60, version: 0, into: &model)
            // Killed: no clean shutdown, the commits are in the log only.
            killed = base.clone()
            killed.reboot(.dropUnsynced)
            try inst.close()
        }
        let fs = killed
        fs.traceIO = true
        let start = fs.ioTrace.count
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(inst.recoveryReport.transactionsReplayed > 0)
        _ = try inst.rollLog()
        fs.traceIO = false
        // A killed process's records may be in the page cache only: fsynced before archiving.
        #expect(Self.logSyncs(fs, since: start) >= 1)
        for (k, v) in model { #expect(try inst.get("db", k) == v) }
        try inst.close()
    }
}
