import Testing
@testable import JetStore

/// Recovery from generations its caller hands over as it reads them (`LogFeed`, a restore),
/// instead of from the instance's directory.
@Suite struct LogFeedTests {
    /// Hands over the generations kept in `paths`, oldest first, each stored in the instance
    /// under its archived name first (the contract of `LogFeed`).
    final class Feed: LogFeed {
        let fs: MemoryFileSystem
        var paths: [String]
        var handed = 0
        init(fs: MemoryFileSystem, paths: [String]) { self.fs = fs; self.paths = paths }
        func next(isCancelled: () -> Bool) throws -> LogReader.Generation? {
            guard !paths.isEmpty else { return nil }
            let p = paths.removeFirst()
            let bytes = try fs.readAll(p)
            let g = try LogReader.parse(bytes, path: p)
            try fs.writeAtomically("/inst/" + FileNames.archivedLog(g.header.generation), bytes)
            handed += 1
            return g
        }
    }

    /// RecoveryStopTests' crashed instance with its log moved out to /kept (as a restore finds
    /// the log in a set): the generations from the checkpoint's on, oldest first.
    static func keptLog() throws -> (RecoveryStopTests.Log, [String]) {
        let l = try RecoveryStopTests.log()
        let start = try Inspection.checkpoint("/inst", fs: l.fs).position.generation
        l.fs.makeDirectories("/kept")
        var kept: [String] = []
        for p in try RecoveryStopTests.logPaths(l.fs) {
            let g = try LogReader.read(fs: l.fs, path: p).header.generation
            let to = "/kept/" + FileNames.archivedLog(g)
            try l.fs.rename(p, to)
            if g >= start { kept.append(to) }
        }
        return (l, kept)
    }

    @Test func fedGenerationsReplayAsTheirFilesWould() throws {
        let (l, kept) = try Self.keptLog()
        #expect(kept.count >= 2)
        let feed = Feed(fs: l.fs, paths: kept)
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, logs: feed)
        #expect(feed.handed == kept.count)
        #expect(inst.recoveryReport.generationsRead == kept.count)
        #expect(try allRecords(inst) == l.models[2])
        try inst.close()
        // The instance's log continues from the generations handed over.
        let again = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        #expect(try allRecords(again) == l.models[2])
        try again.close()
    }

    /// A stop at a time leaves the generations after it unasked for, and the one it stops in
    /// is cut there, as with the directory's log.
    @Test func fedGenerationsStopAtATime() throws {
        let (l, kept) = try Self.keptLog()
        let feed = Feed(fs: l.fs, paths: kept)
        let inst = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, stopAt: .time(l.betweenAAndB), logs: feed)
        #expect(try allRecords(inst) == l.models[0])
        #expect(feed.handed < kept.count)
        try inst.close()
        let again = try Instance.open(at: "/inst", fs: l.fs, owner: "test")
        #expect(try allRecords(again) == l.models[0])
        try again.close()
    }

    /// A feed that is not a chain from the checkpoint (a generation left out) is refused,
    /// not replayed with a hole in it; a feed is for a restored instance only.
    @Test func aFeedWithAGapOrOnALiveInstanceIsRefused() throws {
        let (l, kept) = try Self.keptLog()
        var gap = kept
        gap.remove(at: 1)
        do {
            _ = try Instance.open(at: "/inst", fs: l.fs, owner: "test", restoring: true, logs: Feed(fs: l.fs, paths: gap))
            Issue.record("a feed with a gap was replayed")
        } catch let e as JetError {
            #expect(e.code == .missingLogFile, "\(e)")
        }
        do {
            _ = try Instance.open(at: "/inst", fs: l.fs, owner: "test", logs: Feed(fs: l.fs, paths: kept))
            Issue.record("a feed opened a live instance")
        } catch let e as JetError {
            #expect(e.code == .invalidParameter, "\(e)")
        }
    }
}
