import Testing
import Foundation
@testable import JetStore

/// leveldb's fault_injection_test: a workload is crashed at every I/O point in turn
/// (each write, fsync, rename, remove), the machine "reboots" dropping or tearing what was
/// not synced, and recovery must give a state holding every commit that returned and no
/// part of one that did not.
@Suite struct CrashPointTests {
    /// Runs the workload; returns the commits that returned. Stops at the first error.
    static func workload(_ fs: MemoryFileSystem, commits: Int, models: inout [[[UInt8]: [UInt8]]]) -> Int {
        var done = 0
        var model: [[UInt8]: [UInt8]] = [:]
        models = [model]
        do {
            let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
            for c in 0..<commits {
                var ops: [Mutation] = []
                for j in 0..<6 {
                    let k = key((c * 7 + j * 13) % 90)
                    if (c + j) % 5 == 0 {
                        ops.append(.delete(database: "db", key: k)); model[k] = nil
                    } else {
                        let v = value(c, j, size: j == 0 && c % 4 == 0 ? 6000 : 150)
                        ops.append(.put(database: "db", key: k, value: v)); model[k] = v
                    }
                }
                models.append(model)
                try inst.commit(ops)
                done += 1
            }
            try inst.close()
        } catch {}
        return done
    }

    static func base() throws -> MemoryFileSystem {
        try makeMemoryInstance { p in
            p.logFileSize = 64 * 1024
            p.checkpointDepth = 96 * 1024
            p.cacheSize = 24 * 4096
        }
    }

    @Test func crashAtEveryIOPoint() throws {
        let base = try Self.base()
        let commits = 40
        // Count the I/O points of a clean run.
        let clean = base.clone()
        let before = clean.ioCount
        var models: [[[UInt8]: [UInt8]]] = []
        #expect(Self.workload(clean, commits: commits, models: &models) == commits)
        let points = clean.ioCount - before
        #expect(points > 100)
        var covered = 0
        // make test alternates the two crash modes over the points; make stress tries both at
        // every point, the torn one with three seeds.
        let long = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long"
        let cases: [(Int, MemoryFileSystem.CrashMode)] = (1...points).flatMap { point -> [(Int, MemoryFileSystem.CrashMode)] in
            if !long { return [(point, point % 2 == 0 ? .dropUnsynced : .tornPrefix(seed: UInt64(point)))] }
            return [(point, .dropUnsynced)] + (0..<3).map { (point, .tornPrefix(seed: UInt64(point * 3 + $0))) }
        }
        for (point, mode) in cases {
            let fs = base.clone()
            fs.crash(afterOperations: point)
            let returned = Self.workload(fs, commits: commits, models: &models)
            fs.reboot(mode)
            let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
            let got = try allRecords(inst)
            let ok = got == models[returned] || (returned + 1 < models.count && got == models[returned + 1])
            #expect(ok, "crash point \(point): \(returned) commits returned, state matches neither \(returned) nor \(returned + 1)")
            try inst.close()
            covered += 1
        }
        print("crash points covered: \(covered) crashes over \(points) I/O operations")
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
            let again = fs.clone()
            again.crash(afterOperations: k)
            _ = try? Instance.open(at: "/inst", fs: again, owner: "test")
            again.reboot(.tornPrefix(seed: UInt64(k)))
            let inst = try Instance.open(at: "/inst", fs: again, owner: "test")
            let got = try allRecords(inst)
            #expect(got == models[returned] || got == models[min(returned + 1, models.count - 1)], "recovery crashed at \(k)")
            try inst.close()
        }
    }
}
