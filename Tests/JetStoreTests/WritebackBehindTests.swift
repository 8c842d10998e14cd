import Foundation
import Testing
@testable import JetStore

/// The write-back started on another thread during a doublewrite epoch: once an epoch, half
/// way through it, and only while the pages written in place do not repeat; never after the
/// instance closed. (Durability does not depend on it: every crash test runs with it.)
@Suite struct WritebackBehindTests {
    @Test func itStartsOnceAnEpochHalfWayAndNotWhilePagesRepeat() {
        let w = WritebackBehind()
        defer { w.stop() }
        #expect(!w.shouldStart(epoch: 7, written: 100, repeated: 0, fill: 0.3), "before half the epoch")
        #expect(w.shouldStart(epoch: 7, written: 100, repeated: 0, fill: 0.5))
        #expect(!w.shouldStart(epoch: 7, written: 100, repeated: 0, fill: 0.8), "twice in one epoch")
        // A new epoch counts afresh: 5 repeats in 100 writes is within one in 20, 12 is not.
        #expect(w.shouldStart(epoch: 9, written: 100, repeated: 5, fill: 0.6))
        #expect(!w.shouldStart(epoch: 11, written: 100, repeated: 12, fill: 0.6))
        #expect(!w.shouldStart(epoch: 11, written: 100, repeated: 0, fill: 0.7), "repeats earlier in the epoch still count")
        #expect(w.shouldStart(epoch: 11, written: 200, repeated: 0, fill: 0.8), "12 in 400 is within one in 20")
    }

    static func params(_ p: inout InstanceParameters) {
        p.cacheSize = 64 * 4096
        p.doublewriteSize = 1 << 20 // 256 copies an epoch
    }

    @Test func randomInsertsIntoADatabaseFarLargerThanTheCacheStartIt() throws {
        let fs = try makeMemoryInstance(Self.params)
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var g = SplitMix64(seed: 3)
        for _ in 0..<300 {
            let ops = (0..<100).map { _ in
                Mutation.put(database: "db", key: key(Int(g.next() % 10_000_000)), value: value(Int(g.next() % 1000), 0, size: 200))
            }
            _ = try inst.commit(ops)
        }
        let started = fs.flushBehindCount("/inst/db.edb")
        let pages = try fs.open("/inst/db.edb", .readOnly).size() / 4096
        #expect(started > 0, "no write-back was started for a database of \(pages) pages")
        try inst.close()
        // Stopped with the instance: nothing starts after close.
        inst.writeback.request([try fs.open("/inst/db.edb", .readOnly)])
        Thread.sleep(forTimeInterval: 0.05)
        #expect(fs.flushBehindCount("/inst/db.edb") == started)
    }

    @Test func updatesOfAFewPagesOverAndOverDoNotStartIt() throws {
        let fs = try makeMemoryInstance(Self.params)
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        // About 250 pages of records against a cache of 64 and epochs of 256 copies, in
        // commits of 100 updates: pages are evicted and written again within an epoch (the
        // epoch spans many commits), which fills all the same.
        var g = SplitMix64(seed: 5)
        // Every record first (the epochs of a growing database may start it).
        for r in 0..<14 { _ = try inst.commit((0..<100).map { i in Mutation.put(database: "db", key: key(r * 100 + i), value: value(i, 0, size: 600)) }) }
        let before = fs.flushBehindCount("/inst/db.edb")
        for round in 1..<300 {
            let ops = (0..<100).map { _ in
                let i = Int(g.next() % 1400)
                return Mutation.put(database: "db", key: key(i), value: value(i, round, size: 600))
            }
            _ = try inst.commit(ops)
        }
        let pages = try fs.open("/inst/db.edb", .readOnly).size() / 4096
        #expect(pages > 200)
        #expect(fs.flushBehindCount("/inst/db.edb") == before)
        try inst.close()
    }

    @Test func onAPosixFileItIsAHintAndAClosedFileIsLeftAlone() throws {
        let dir = temporaryDirectory("flushbehind")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let f = try PosixFileSystem().open(dir + "/f", .createNew)
        try [UInt8](repeating: 7, count: 1 << 20).withUnsafeBytes { try f.write(at: 0, $0) }
        f.flushBehind()
        try f.sync()
        f.close()
        f.flushBehind() // its descriptor is closed: nothing is done with it
        #expect(try PosixFileSystem().readAll(dir + "/f") == [UInt8](repeating: 7, count: 1 << 20))
    }
}
