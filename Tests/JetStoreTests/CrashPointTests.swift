import Testing
import Foundation
@testable import JetStore

/// leveldb's fault_injection_test: a workload is crashed at every I/O point in turn
/// (each write, fsync, rename, remove), the machine "reboots" dropping or tearing what was
/// not synced, and recovery must give a state holding every commit that returned and no
/// part of one that did not.
@Suite struct CrashPointTests {
    /// A workload run on a file system that may crash: (file system, commits, the model after
    /// each commit, filled in) -> the commits that returned.
    typealias Workload = (MemoryFileSystem, Int, inout [[[UInt8]: [UInt8]]]) -> Int

    /// Opens the instance on `fs` and commits `commits` transactions, transaction `c` being
    /// `ops(c, &model)` (which applies it to the model too), starting from `start`; `models`
    /// gets the model before the first and after each. Stops at the first error (a crash);
    /// returns the commits that returned.
    static func commitEach(_ fs: MemoryFileSystem, commits: Int, from start: [[UInt8]: [UInt8]] = [:],
                           models: inout [[[UInt8]: [UInt8]]],
                           _ ops: (Int, inout [[UInt8]: [UInt8]]) -> [Mutation]) -> Int {
        var done = 0
        var model = start
        models = [model]
        do {
            let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
            for c in 0..<commits {
                let batch = ops(c, &model)
                models.append(model)
                try inst.commit(batch)
                done += 1
            }
            try inst.close()
        } catch {}
        return done
    }

    /// The suite's workload: six puts and deletes a commit over 400 keys, some values in
    /// overflow pages. Returns the commits that returned.
    static func workload(_ fs: MemoryFileSystem, commits: Int, models: inout [[[UInt8]: [UInt8]]]) -> Int {
        commitEach(fs, commits: commits, models: &models) { c, model in
            var ops: [Mutation] = []
            for j in 0..<6 {
                let k = key((c * 7 + j * 13) % 400)
                if (c + j) % 5 == 0 {
                    ops.append(.delete(database: "db", key: k)); model[k] = nil
                } else {
                    let v = value(c, j, size: j == 0 && c % 4 == 0 ? 6000 : 150)
                    ops.append(.put(database: "db", key: k, value: v)); model[k] = v
                }
            }
            return ops
        }
    }

    /// The crash modes tried at an I/O point: `make test` alternates dropping and tearing
    /// unsynced writes over the points; `make stress` tries both at every point, tearing with
    /// three seeds.
    static func modes(at point: Int) -> [MemoryFileSystem.CrashMode] {
        if ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] != "long" {
            return [point % 2 == 0 ? .dropUnsynced : .tornPrefix(seed: UInt64(point))]
        }
        return [.dropUnsynced] + (0..<3).map { .tornPrefix(seed: UInt64(point * 3 + $0)) }
    }

    /// A small cache (batches of 6 pages written through the doublewrite file), a small
    /// doublewrite file (its epoch restarts, fsyncing the database, every few batches) and a
    /// shallow checkpoint: every write path runs many times in 40 commits.
    static func base() throws -> MemoryFileSystem {
        try makeMemoryInstance { p in
            p.logFileSize = 64 * 1024
            p.checkpointDepth = 48 * 1024
            p.cacheSize = 24 * 4096
            p.doublewriteSize = 96 * 1024
        }
    }

    /// Recovers after a crash; returns whether the state is that of `returned` or `returned + 1`
    /// commits, and how many pages came back from the doublewrite file.
    static func recover(_ fs: MemoryFileSystem, _ models: [[[UInt8]: [UInt8]]], returned: Int) throws -> (ok: Bool, repaired: Int) {
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        let got = try allRecords(inst)
        let ok = got == models[returned] || (returned + 1 < models.count && got == models[returned + 1])
        let repaired = inst.recoveryReport.pagesRepaired
        try inst.close()
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        return (ok && report.ok, repaired)
    }

    /// Crashes `workload` (this suite's by default) on a fresh clone of `base` at each point,
    /// in each mode `modes` gives for it, reboots and recovers; every recovery must hold what
    /// returned (or one more commit) with every page good. Returns the crashes run and how
    /// many recoveries put pages back from the doublewrite file.
    static func crashAndRecover(_ base: MemoryFileSystem, commits: Int, at points: [Int],
                                modes: (Int) -> [MemoryFileSystem.CrashMode], label: String,
                                workload: Workload = CrashPointTests.workload) throws -> (covered: Int, repaired: Int) {
        var models: [[[UInt8]: [UInt8]]] = []
        var covered = 0, repairedRuns = 0
        for point in points {
            for mode in modes(point) {
                let fs = base.clone()
                fs.crash(afterOperations: point)
                let returned = workload(fs, commits, &models)
                fs.reboot(mode)
                let (ok, repaired) = try recover(fs, models, returned: returned)
                #expect(ok, "\(label) \(point) (\(mode)): \(returned) commits returned, state matches neither \(returned) nor \(returned + 1), or a page is bad")
                covered += 1
                if repaired > 0 { repairedRuns += 1 }
            }
        }
        return (covered, repairedRuns)
    }

    @Test func crashAtEveryIOPoint() throws {
        let base = try Self.base()
        let commits = 60
        // Count the I/O points of a clean run.
        let clean = base.clone()
        let before = clean.ioCount
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(Self.workload(clean, commits: commits, models: &models) == commits)
        let points = clean.ioCount - before
        #expect(points > 100)
        let (covered, repairedRuns) = try Self.crashAndRecover(base, commits: commits, at: Array(1...points),
                                                               modes: Self.modes(at:), label: "crash point")
        // Crashes while pages were written in place: some pages came back from the doublewrite file.
        #expect(repairedRuns > 0)
        print("crash points covered: \(covered) crashes over \(points) I/O operations; \(repairedRuns) recoveries put pages back from the doublewrite file")
    }

    /// The doublewrite path's own crash points: every write and fsync of `edb.dw` (a batch,
    /// an epoch's start), and the first write after each (a page in place, right after its
    /// copy was synced), each crashed dropping unsynced writes and tearing them (one seed;
    /// three with JETBACKUP_STRESS=long). Recovery must give the committed state with every
    /// page whole.
    @Test func crashAtEveryDoublewritePoint() throws {
        let base = try Self.base()
        let commits = 60
        let clean = base.clone()
        clean.traceIO = true
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(Self.workload(clean, commits: commits, models: &models) == commits)
        let trace = clean.ioTrace
        let dw = trace.filter { $0.path.hasSuffix(FileNames.doublewrite) }
        #expect(dw.contains { $0.kind == .write } && dw.contains { $0.kind == .sync })
        let after = dw.filter { $0.kind == .sync }.map { $0.index + 1 }.filter { i in trace.contains { $0.index == i && $0.path.hasSuffix(".edb") } }
        #expect(!after.isEmpty, "no page was written in place right after its copy was synced")
        let points = Set(dw.map(\.index) + after).sorted()
        let seeds = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long" ? 3 : 1
        let (covered, repairedRuns) = try Self.crashAndRecover(base, commits: commits, at: points, modes: { point in
            [.dropUnsynced] + (0..<seeds).map { .tornPrefix(seed: UInt64(point * 7 + $0)) }
        }, label: "doublewrite crash point")
        #expect(repairedRuns > 0)
        print("doublewrite crash points: \(covered) crashes over \(points.count) points; \(repairedRuns) recoveries put pages back")
    }

    /// A checkpoint whose only dirty pages are headers (a backup's record, then the clean
    /// shutdown) writes them as headers — page 0, fsync, its shadow — and never opens a
    /// doublewrite epoch for them; crashed at each of its I/O points, dropping or tearing
    /// what was not synced, recovery keeps every record and the record of the backup is there
    /// whole or not at all.
    @Test func headerOnlyCheckpointWritesNoDoublewriteAndSurvivesEveryCrash() throws {
        let base = try Self.base()
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(Self.workload(base, commits: 20, models: &models) == 20)
        let expected = models[20]
        let info = DatabaseHeader.BackupInfo(genLow: 1, genHigh: 2, position: LogPosition(generation: 1, offset: 4096), time: 42)
        func session(_ fs: MemoryFileSystem) {
            do {
                let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
                try inst.recordBackup(full: false, info)
                try inst.flushCheckpoint()
                try inst.close()
            } catch {}
        }
        let clean = base.clone()
        clean.traceIO = true
        let before = clean.ioCount
        session(clean)
        let points = clean.ioCount - before
        let written = clean.ioTrace.filter { $0.index > before }
        #expect(!written.contains { $0.path.hasSuffix(FileNames.doublewrite) }, "the doublewrite file was written for header pages")
        #expect(written.contains { $0.path.hasSuffix(".edb") && $0.kind == .write })
        // Both copies of each header are durable before a checkpoint names a position past them.
        for (i, op) in written.enumerated() where op.path.hasSuffix(FileNames.checkpoint) && op.kind == .write {
            let lastOnDatabase = written[..<i].last { $0.path.hasSuffix(".edb") }
            #expect(lastOnDatabase?.kind == .sync, "\(FileNames.checkpoint) written after an unsynced write to the database")
        }
        let seeds = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long" ? 3 : 1
        var covered = 0
        for point in 1...points {
            for mode in [MemoryFileSystem.CrashMode.dropUnsynced] + (0..<seeds).map({ .tornPrefix(seed: UInt64(point * 5 + $0)) }) {
                let fs = base.clone()
                fs.crash(afterOperations: point)
                session(fs)
                fs.reboot(mode)
                let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
                #expect(try allRecords(inst) == expected, "header crash point \(point) (\(mode)): records differ")
                try inst.close()
                let slot = try #require(try Inspection.databases("/inst", fs: fs).first).header.incPrev
                #expect(slot == nil || slot == info, "header crash point \(point) (\(mode)): backup record \(String(describing: slot))")
                let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
                #expect(report.ok, "header crash point \(point) (\(mode)): check failed")
                covered += 1
            }
        }
        #expect(covered > 10)
        print("header-only checkpoint: \(covered) crashes over \(points) I/O points")
    }

    /// Crashes of recovery itself, after crashes of the workload at every I/O point of its
    /// middle: each second recovery must give what the first would have. Redo brings a
    /// split's source page up to the split, which can be in the middle of a transaction; a
    /// page written in that state carries the transaction's dbtime with only part of its
    /// changes, and the next recovery skipped the rest (three records lost, or the log refused
    /// as not fitting the database). Such a page is now held until the transaction is
    /// applied to it (`RedoBatch.run`); without that this test fails.
    @Test func crashDuringRecoveryAfterEachCrashPoint() throws {
        let base = try Self.base()
        let long = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long"
        var runs = 0
        for w in 100...260 {
            var models: [[[UInt8]: [UInt8]]] = []
            let fs = base.clone()
            fs.crash(afterOperations: w)
            let returned = Self.workload(fs, commits: 60, models: &models)
            fs.reboot(.tornPrefix(seed: UInt64(w)))
            for k in stride(from: 1, through: 40, by: long ? 1 : 3) {
                let got = try Self.recoverAfterCrashingRecovery(fs, at: k, seed: UInt64(w * 64 + k))
                #expect(got == models[returned] || got == models[min(returned + 1, models.count - 1)],
                        "workload crashed at \(w), recovery at \(k): \(got.count) records")
                runs += 1
            }
        }
        print("crash during recovery: \(runs) second recoveries")
    }

    /// A crash during recovery itself: recovery must be restartable.
    @Test func crashDuringRecovery() throws {
        let base = try Self.base()
        var models: [[[UInt8]: [UInt8]]] = []
        let fs = base.clone()
        fs.crash(afterOperations: 150)
        let returned = Self.workload(fs, commits: 60, models: &models)
        fs.reboot(.tornPrefix(seed: 9))
        for k in 1..<25 {
            let got = try Self.recoverAfterCrashingRecovery(fs, at: k, seed: UInt64(k))
            #expect(got == models[returned] || got == models[min(returned + 1, models.count - 1)], "recovery crashed at \(k)")
        }
    }

    /// On a clone of the crashed `fs`: recovery crashed after `k` I/O operations (torn with
    /// `seed`), then recovered again; the records it gives.
    static func recoverAfterCrashingRecovery(_ fs: MemoryFileSystem, at k: Int, seed: UInt64) throws -> [[UInt8]: [UInt8]] {
        let again = fs.clone()
        again.crash(afterOperations: k)
        _ = try? Instance.open(at: "/inst", fs: again, owner: "test")
        again.reboot(.tornPrefix(seed: seed))
        let inst = try Instance.open(at: "/inst", fs: again, owner: "test")
        let got = try allRecords(inst)
        try inst.close()
        return got
    }
}
