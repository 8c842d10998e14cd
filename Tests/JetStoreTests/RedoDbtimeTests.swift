import Testing
@testable import JetStore

/// Redo's dbtime rule (README "Physiological redo"): a transaction's changes of a page are
/// applied only to the page version they were made from (its dbtime equal to the group's
/// before), skipped on a page already past them, and a page older than that version is
/// refused: the log and the database do not belong together.
@Suite struct RedoDbtimeTests {
    static func rootPage(_ fs: MemoryFileSystem) throws -> (offset: Int, size: Int) {
        let dbs = try Inspection.databases("/inst", fs: fs)
        let h = try #require(dbs.first { $0.name == "db" }).header
        return (Int(h.rootPage) * Int(h.pageSize), Int(h.pageSize))
    }

    /// The one leaf of a small database put back to an older version (its checksum good) under
    /// a log whose changes start from a newer one: the open is refused with
    /// JET_errLogReadVerifyFailure naming the page and both dbtimes, and leaves the files as
    /// they were.
    @Test func aPageOlderThanTheLogExpectsIsRefused() throws {
        let fs = try makeMemoryInstance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        try inst.commit([.put(database: "db", key: key(1), value: value(1, 0, size: 100))])
        try inst.flushCheckpoint()
        let (offset, size) = try Self.rootPage(fs)
        let old = Array(try #require(fs.contents("/inst/db.edb"))[offset..<(offset + size)])
        try inst.commit([.put(database: "db", key: key(1), value: value(1, 1, size: 100))])
        try inst.flushCheckpoint()
        // Logged from the page as the last checkpoint left it; the page itself is not written.
        try inst.commit([.put(database: "db", key: key(2), value: value(2, 2, size: 100))])
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        var file = try #require(fs.contents("/inst/db.edb"))
        #expect(Array(file[offset..<(offset + size)]) != old)
        file.replaceSubrange(offset..<(offset + size), with: old)
        fs.setContents("/inst/db.edb", file)
        let before = try fs.list("/inst").sorted().map { ($0, fs.contents("/inst/" + $0)) }
        do {
            let again = try Instance.open(at: "/inst", fs: fs, owner: "test")
            try? again.close()
            Issue.record("an instance whose page is older than its log opened")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure, "\(e)")
            #expect(e.message.contains("do not belong together") && e.message.contains("page \(offset / size)"), "\(e)")
        }
        let after = try fs.list("/inst").sorted().map { ($0, fs.contents("/inst/" + $0)) }
        #expect(after.map(\.0) == before.map(\.0))
        // The lock file names the process that tried; the events log says it was refused.
        for ((name, a), (_, b)) in zip(after, before) where name != FileNames.events && name != FileNames.lock {
            #expect(a == b, "\(name) changed by the refused open")
        }
    }

    /// A transaction whose pages reached the disk before the crash (written by a checkpoint
    /// the crash then lost) is skipped by redo, not applied twice: the records are there once.
    @Test func aPageAlreadyPastTheChangesIsSkipped() throws {
        let fs = try makeMemoryInstance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        var model: [[UInt8]: [UInt8]] = [:]
        for i in 0..<20 {
            let v = value(i, 0, size: 100)
            try inst.commit([.put(database: "db", key: key(i), value: v)])
            model[key(i)] = v
        }
        // The pages go to disk with the transactions in them; the checkpoint file keeps the
        // position from before them (its update is dropped by the crash below).
        let chk = try #require(fs.contents("/inst/edb.chk"))
        try inst.flushCheckpoint()
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        fs.setContents("/inst/edb.chk", chk)
        let again = try Instance.open(at: "/inst", fs: fs, owner: "test")
        #expect(again.recoveryReport.transactionsReplayed >= 20)
        #expect(try allRecords(again) == model)
        try again.close()
        let report = try Inspection.check("/inst", fs: fs, parameters: try Instance.readParameters(at: "/inst", fs: fs))
        #expect(report.ok, "\(report.problems)")
    }
}
