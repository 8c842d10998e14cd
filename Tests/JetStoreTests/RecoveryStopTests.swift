#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import JetStore

/// Point-in-time replay (`Instance.RecoveryStop`): every commit carries its commit time,
/// the log reports each commit's time and end, and a restored instance opened with a stop
/// holds exactly the commits up to it — and keeps holding only those after it reopens.
@Suite struct RecoveryStopTests {
    struct Log {
        var fs: MemoryFileSystem
        /// Content after each phase: A, A+B, A+B+C.
        var models: [[[UInt8]: [UInt8]]]
        /// A time after every commit of A and before every commit of B.
        var betweenAAndB: UInt64
        /// The generation B's last commit ends in (C starts in a later one).
        var endOfB: UInt32
    }

    /// Three phases of commits, all still in the log (the instance then crashes): A, then B
    /// after a clock tick, a roll of the log, then C.
    static func log() throws -> Log {
        let fs = try makeMemoryInstance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var model: [[UInt8]: [UInt8]] = [:]
        var models: [[[UInt8]: [UInt8]]] = []
        func phase(_ p: Int, _ keys: Range<Int>) throws {
            for c in keys {
                let k = key(c % 70), v = value(c, p, size: c % 9 == 0 ? 5000 : 120)
                if c % 11 == 5 {
                    // The key the commit before put: every commit changes something (and is logged).
                    let d = key((c - 1) % 70)
                    try inst.commit([.delete(database: "db", key: d)]); model[d] = nil
                } else {
                    try inst.commit([.put(database: "db", key: k, value: v)]); model[k] = v
                }
            }
            models.append(model)
        }
        try phase(0, 0..<60)
        usleep(2000)
        let between = Clock.microsecondsSinceEpoch()
        usleep(2000)
        try phase(1, 60..<120)
        let endOfB = try inst.rollLog()
        usleep(2000)
        try phase(2, 120..<180)
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        return Log(fs: fs, models: models, betweenAAndB: between, endOfB: endOfB)
    }

    static func logPaths(_ fs: MemoryFileSystem) throws -> [String] {
        let archived = try fs.list("/inst").compactMap { FileNames.parseArchivedLog($0) }.sorted().map { "/inst/" + FileNames.archivedLog($0) }
        return archived + (fs.exists("/inst/edb.log") ? ["/inst/edb.log"] : [])
    }

    @Test func replayToATimeGivesTheCommitsUpToIt() throws {
        let l = try Self.log()
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .time(l.betweenAAndB))
        #expect(try allRecords(inst) == l.models[0])
        #expect(inst.recoveryReport.stoppedAt != nil)
        let last = try #require(inst.recoveryReport.lastCommitTime)
        #expect(last <= l.betweenAAndB)
        // It takes new work, and what it discarded never comes back.
        try inst.commit([.put(database: "db", key: Array("after".utf8), value: [1])])
        try inst.close()
        var expected = l.models[0]
        expected[Array("after".utf8)] = [1]
        let again = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        #expect(try allRecords(again) == expected)
        try again.close()
        // Nor after a crash: the discarded log is gone, not just skipped once.
        let crashed = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        try crashed.commit([.put(database: "db", key: Array("more".utf8), value: [2])])
        l.fs.crash(afterOperations: 0)
        try? crashed.close()
        l.fs.reboot(.dropUnsynced)
        expected[Array("more".utf8)] = [2]
        let recovered = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        #expect(try allRecords(recovered) == expected)
        try recovered.close()
    }

    @Test func replayToAGenerationGivesTheCommitsEndingInIt() throws {
        let l = try Self.log()
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .generation(l.endOfB))
        #expect(try allRecords(inst) == l.models[1])
        #expect(inst.recoveryReport.lastCommitEnd?.generation == l.endOfB)
        try inst.close()
    }

    @Test func replayWithoutAStopGivesEveryCommit() throws {
        let l = try Self.log()
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .time(.max))
        #expect(try allRecords(inst) == l.models[2])
        try inst.close()
    }

    /// A stop before the first commit replays nothing: the database as the checkpoint left it.
    @Test func replayToATimeBeforeEveryCommitGivesNone() throws {
        let l = try Self.log()
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .time(1))
        #expect(try allRecords(inst).isEmpty)
        #expect(inst.recoveryReport.transactionsReplayed == 0)
        try inst.close()
    }

    /// The commit times and ends the log reports: rising, one per commit, and each end the
    /// point a stop at that commit's time replays through.
    @Test func logReportsEachCommitsTimeAndEnd() throws {
        let l = try Self.log()
        let start = try Inspection.checkpoint("/inst", fs: l.fs).position
        let commits = try LogReader.commits(fs: l.fs, paths: try Self.logPaths(l.fs), from: start)
        // From the checkpoint (after the database was created): the 180 commits.
        #expect(commits.count == 180)
        #expect(zip(commits, commits.dropFirst()).allSatisfy { $0.time <= $1.time && $0.end < $1.end })
        #expect(commits.filter { $0.time <= l.betweenAAndB }.count == 60)
        let lastOfB = commits[119]
        #expect(lastOfB.end.generation == l.endOfB)
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .time(lastOfB.time))
        #expect(inst.recoveryReport.lastCommitEnd == lastOfB.end)
        #expect(try allRecords(inst) == l.models[1])
        try inst.close()
    }

    /// Discarding commits is for a restored instance only.
    @Test func stopOnALiveInstanceIsRefused() throws {
        let l = try Self.log()
        #expect(throws: JetError.self) { try Instance.open(at: "/inst", fs: l.fs, owner: "test", stopAt: .time(1)) }
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        #expect(try allRecords(inst) == l.models[2])
        try inst.close()
    }

    /// A backup's copy of the log starts at a generation boundary, which may cut a transaction:
    /// the scanner leaves out the one under way (its commit time came before) instead of
    /// refusing the log, and finds every commit after it with the time and end the whole log has.
    @Test func commitScannerStartsAtAGenerationThatContinuesATransaction() throws {
        let fs = try makeMemoryInstance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var times: [UInt64] = []
        for c in 0..<14 {
            // Records larger than a third of a generation: most rolls fall inside one.
            let t = try inst.commitTimed([.put(database: "db", key: key(c), value: value(c, 0, size: 25_000))]).time
            times.append(try #require(t))
        }
        try inst.close()
        let paths = try Self.logPaths(fs)
        let all = try LogReader.commits(fs: fs, paths: paths)
        // Each commit's time is the one `commitTimed` returned (the database's creation is first).
        #expect(Array(all.suffix(times.count).map(\.time)) == times)
        var continued = 0
        for k in 1..<paths.count {
            let g = try LogReader.parse(try fs.readAll(paths[k]), path: paths[k])
            guard let first = g.fragments.first else { continue }
            var scanner = LogReader.CommitScanner()
            var got: [LogReader.Commit] = []
            for p in paths[k...] { got += try scanner.feed(try LogReader.parse(try fs.readAll(p), path: p)) }
            var expected = all.filter { $0.end.generation >= g.header.generation }
            if first.type == .middle || first.type == .last {
                continued += 1
                expected.removeFirst()
            }
            #expect(got == expected, "from generation \(g.header.generation)")
        }
        #expect(continued > 0, "no generation began inside a transaction: the test proves nothing")
    }
}
