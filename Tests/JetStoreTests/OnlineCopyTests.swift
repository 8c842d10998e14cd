import Testing
import Foundation
@testable import JetStore

/// The property an online backup rests on: database files copied page by page while
/// writer threads commit, plus the log from the checkpoint at the copy's start through a
/// roll after the copy, recover to exactly the state committed at that roll.
@Suite struct OnlineCopyTests {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var model: [[UInt8]: [UInt8]] = [:]
        var paused = false
        var stop = false
        var waiting = 0
        var errors: [String] = []
        /// Keys of database a the writers delete first, one each, before their random operations.
        var victims: [Int] = []
        /// Set while the copy runs: the writers delete the victims only then.
        var copying = false
        /// Database a's pages in use right after the last victim was deleted.
        var pagesWhenThinned: Int?
        var operations = 0
    }

    @Test(arguments: [1, 2, 3])
    func pagesCopiedWhileWritingRecover(round: Int) throws {
        _ = try Self.copyWhileWriting(round: round, keys: 2000, seeded: 300, deletes: (1, 6), pause: 300, chunk: 8, overflow: true,
                                      thin: (0, 0))
    }

    /// The same while leaves merge under the copy: six seeded records of ten are deleted
    /// before it (leaves about 40 % full, few merges yet), and once the copy has begun the
    /// writers delete a quarter more, in a scattered order, while database a is copied a page
    /// at a time: leaves fall under a quarter and merge (`BTree.mergeIfRoom`), so a merged
    /// page and its sibling are copied on either side of the merge.
    @Test(arguments: [1, 2])
    func pagesCopiedWhileLeavesMergeRecover(round: Int) throws {
        let (atStart, atEnd, during) = try Self.copyWhileWriting(round: round, keys: 600, seeded: 600, deletes: (1, 6), pause: 4000,
                                                                 chunk: 1, overflow: false, thin: (360, 150))
        #expect(during >= 50, "\(during) of the 150 deletes ran while database a was copied")
        // Emptied leaves alone free a few pages (3 to 5 of 37 with merges taken out); merges
        // free a third or more.
        #expect((atStart - atEnd) * 5 >= atStart, "pages in use of database a: \(atStart) when its copy began, \(atEnd) after the deletes")
    }

    /// Seeds database a with keys 0..<seeded, copies both databases online while three writers
    /// put or delete (`deletes`: n of d operations) random keys below `keys`, pausing `pause` µs
    /// between chunks of `chunk` pages of the copy (one value of eight 7,000 bytes, in overflow
    /// pages, with `overflow`); `thin.before` of the seeded keys of a, in a scattered order,
    /// are deleted before the writers start, and `thin.during` more by the writers, one each,
    /// once the copy has begun. The copy and its logs must recover to the state at the roll.
    /// Returns database a's pages in use when its copy began and once the writers' deletes
    /// were done, and how many of those ran while a was copied.
    static func copyWhileWriting(round: Int, keys: UInt64, seeded: Int, deletes: (UInt64, UInt64), pause: UInt32, chunk: Int,
                                 overflow: Bool, thin: (before: Int, during: Int)) throws -> (Int, Int, Int) {
        let dir = temporaryDirectory("online")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let src = dir + "/src", copy = dir + "/copy"
        var p = InstanceParameters()
        p.pageSize = 4096
        p.logFileSize = 128 * 1024
        p.cacheSize = 48 * 4096
        p.checkpointDepth = 256 * 1024
        try Instance.create(at: src, parameters: p)
        let inst = try Instance.open(at: src, owner: "test")
        try inst.createDatabase("a")
        try inst.createDatabase("b")
        let box = Box()
        // Seed some data so there is something to copy from the start.
        for i in 0..<seeded { try inst.commit([.put(database: "a", key: key(i), value: value(i, 0, size: 200))]) }
        for i in 0..<seeded { box.model[Array("a".utf8) + key(i)] = value(i, 0, size: 200) }
        var shuffler = SplitMix64(seed: UInt64(round))
        let victims = Array(0..<seeded).shuffled(using: &shuffler)
        for i in victims.prefix(thin.before) {
            try inst.commit([.delete(database: "a", key: key(i))])
            box.model[Array("a".utf8) + key(i)] = nil
        }
        box.victims = Array(victims.dropFirst(thin.before).prefix(thin.during))

        let writers = 3
        let group = DispatchGroup()
        for w in 0..<writers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var rng = SplitMix64(seed: UInt64(round * 100 + w))
                var n = 0
                while true {
                    box.lock.lock()
                    while box.paused && !box.stop { box.waiting += 1; box.lock.unlock(); usleep(200); box.lock.lock(); box.waiting -= 1 }
                    if box.stop { box.lock.unlock(); return }
                    if !box.victims.isEmpty && !box.copying { box.lock.unlock(); usleep(200); continue }
                    // Commit while holding the box lock so the model and the log agree on order.
                    let victim = box.victims.popLast()
                    let db = victim != nil || rng.next() % 2 == 0 ? "a" : "b"
                    let k = key(victim ?? Int(rng.next() % keys))
                    let del = victim != nil || rng.next() % deletes.1 < deletes.0
                    box.operations += 1
                    let v = value(w * 1_000_000 + n, round, size: rng.next() % 8 == 0 && overflow ? 7000 : Int(rng.next() % 300))
                    do {
                        if del { try inst.commit([.delete(database: db, key: k)]) } else { try inst.commit([.put(database: db, key: k, value: v)]) }
                        box.model[Array(db.utf8) + k] = del ? nil : v
                        if victim != nil && box.victims.isEmpty { box.pagesWhenThinned = try BTreeMergeTests.pagesInUse(inst, "a") }
                    } catch {
                        box.errors.append("\(error)")
                    }
                    box.lock.unlock()
                    n += 1
                    usleep(50)
                }
            }
        }
        usleep(20_000)
        // The copy, through the engine's backup session: checkpoint position now, then
        // every page (verified by the session), slowly, while writers run.
        let session = try inst.beginBackup(.full)
        let start = session.start
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        let fs = PosixFileSystem()
        var pagesAtCopy = 0
        var victimsLeft: [Int] = []
        for db in session.databases {
            if db.name == "a" {
                pagesAtCopy = try BTreeMergeTests.pagesInUse(inst, "a")
                box.lock.withLock { box.copying = true; victimsLeft.append(box.victims.count) }
            }
            defer { if db.name == "a" { box.lock.withLock { victimsLeft.append(box.victims.count) } } }
            let out = try fs.open(copy + "/" + db.fileName, .createNew)
            var buf = [UInt8](repeating: 0, count: chunk * db.pageSize)
            var offset: Int64 = 0
            while true {
                let n = try buf.withUnsafeMutableBytes { try session.readDatabase(db.name, at: offset, into: $0) }
                if n == 0 { break }
                try buf.withUnsafeBytes { try out.write(at: offset, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                offset += Int64(n)
                usleep(pause)
                if n < buf.count { break }
            }
            out.close()
        }
        // The deletes that began during the copy all made (at most 10 s).
        for _ in 0..<1000 where box.lock.withLock({ !box.victims.isEmpty }) { usleep(10_000) }
        // Stop the writers at a commit boundary, roll, and take the model at that instant.
        box.lock.lock()
        box.paused = true
        let last = try session.rollLog()
        let expected = box.model
        box.paused = false
        box.lock.unlock()
        usleep(20_000)
        box.lock.lock(); box.stop = true; box.lock.unlock()
        group.wait()
        for g in try session.generations(through: last) {
            let log = try session.readLog(g)
            #expect(log.header.generation == g)
            try Data(log.bytes.array).write(to: URL(fileURLWithPath: copy + "/" + log.fileName))
        }
        session.abort()
        #expect(box.victims.isEmpty, "\(box.victims.count) of \(thin.during) deletes not done before the roll (\(box.operations) operations)")
        try inst.close()
        #expect(box.errors.isEmpty)
        // Lay out an instance around the copy and recover it.
        try FileManager.default.copyItem(atPath: src + "/instance.json", toPath: copy + "/instance.json")
        try CheckpointFile.write(fs: fs, path: copy + "/edb.chk",
                                 Checkpoint(sequence: 1, logSignature: p.logSignature(of: src), position: start, time: 0))
        // The copied headers are marked as backup images: open as a restore does.
        let restored = try Instance.open(at: copy, owner: "test", restoring: true)
        #expect(restored.recoveryReport.transactionsReplayed > 0)
        var got: [[UInt8]: [UInt8]] = [:]
        for db in ["a", "b"] {
            for (k, v) in try allRecords(restored, db) { got[Array(db.utf8) + k] = v }
        }
        #expect(got.count == expected.count)
        #expect(got == expected)
        try restored.close()
        return (pagesAtCopy, box.pagesWhenThinned ?? pagesAtCopy, victimsLeft[0] - victimsLeft[1])
    }
}

extension InstanceParameters {
    func logSignature(of path: String) throws -> Signature { try Instance.readParameters(at: path).logSignature }
}
