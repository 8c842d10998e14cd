import Foundation
import Testing
@testable import JetStore

/// Concurrent committers share log fsyncs, and every commit is durable when it returns.
@Suite struct GroupCommitTests {
    @Test func concurrentCommitsShareFsyncs() throws {
        let fs = try makeMemoryInstance { $0.logFileSize = 1 << 20; $0.checkpointDepth = 64 << 20 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        let threads = 8, each = 200
        fs.syncLatency = .milliseconds(2)
        let before = fs.syncCount
        // Real threads: concurrentPerform would run only as many as there are cores.
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            Thread.detachNewThread {
                for c in 0..<each {
                    try? inst.commit([.put(database: "db", key: key(t * 10_000 + c), value: value(t, c, size: 40))])
                }
                done.leave()
            }
        }
        done.wait()
        let syncs = fs.syncCount - before
        print("group commit: \(threads * each) commits, \(syncs) fsyncs")
        // With a 2 ms flush, 8 committers that each waited for their own fsync would need
        // one per commit; sharing them needs far fewer.
        #expect(syncs * 2 < threads * each, "committers did not share fsyncs")
        fs.syncLatency = .zero
        // Durable when returned: drop everything unsynced, recover, all commits are there.
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
        #expect(try allRecords(again).count == threads * each)
        try again.close()
    }
}
