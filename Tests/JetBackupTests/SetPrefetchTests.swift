import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// `SetPrefetch` checks the set an incremental extends while the instance opens, without the
/// destination's lock. Its result stands only for the manifest bytes it checked: a set
/// extended meanwhile, or a damaged one, is checked again by the run, in order, under the lock.
@Suite struct SetPrefetchTests {
    static func options(_ set: String, fs: any FileSystem = PosixFileSystem()) -> BackupOptions {
        var o = BackupOptions(directory: set)
        o.incremental = true
        o.fs = fs
        return o
    }

    /// An instance, a set with its full backup, and inserts since.
    static func setWithAFullBackup(_ s: Scratch, serveControl: Bool = false) throws -> (instance: String, Instance, set: String) {
        let ip = try s.makeInstance { $0.checkpointDepth = 4 << 20 }
        let inst = try Instance.open(at: ip, owner: "test", serveControl: serveControl)
        try load(inst, count: 1500)
        let set = s.mkdir("set")
        _ = try backup(inst, set)
        try load(inst, from: 1500, count: 1500)
        return (ip, inst, set)
    }

    /// Runs the backup `o` in this process, or through the instance's owner (the instance
    /// opened with `serveControl`) on its control socket.
    static func run(_ inst: Instance, _ o: BackupOptions, throughOwner: Bool) throws -> BackupSummary {
        guard throughOwner else { return try JetBackupInstance.run(inst, o) }
        let client = try #require(try ControlClient.connect(instance: inst.path))
        defer { client.close() }
        return try JetBackupInstance.run(through: client, o)
    }

    /// Closes the instance; the set restores to what it held.
    static func closeAndRestore(_ inst: Instance, _ set: String, _ s: Scratch) throws {
        let want = try digest(inst)
        try inst.close()
        _ = try restore(set, s.path("r"))
        #expect(try digest(s.path("r")) == want)
    }

    @Test func aCheckedSetIsNotReadAgainByTheRun() throws {
        let s = Scratch()
        defer { s.remove() }
        let (_, inst, set) = try Self.setWithAFullBackup(s)
        _ = try backup(inst, set, incremental: true)
        try load(inst, from: 3000, count: 1500)

        let counter = DirectoryOpens(dir: set)
        var o = Self.options(set, fs: counter)
        let p = try #require(SetPrefetch.start(o))
        p.wait()
        let checkedReads = counter.opens.filter { $0.mode == .readOnly }.count
        #expect(checkedReads >= 3, "the prefetch reads the set's files (\(checkedReads))")
        counter.reset()
        o.setPrefetch = p
        let sum = try JetBackupInstance.run(inst, o)
        // The run reads only MANIFEST.json (to compare it) and no log or image of the set again.
        let runReads = counter.opens.filter { $0.mode == .readOnly }.count
        #expect(runReads == 1, "the run read \(runReads) files of the set")
        #expect(sum.generationsTruncated != nil)
        try Self.closeAndRestore(inst, set, s)
    }

    @Test func aSetExtendedAfterThePrefetchIsCheckedAgain() throws {
        let s = Scratch()
        defer { s.remove() }
        let (_, inst, set) = try Self.setWithAFullBackup(s)
        let p = try #require(SetPrefetch.start(Self.options(set)))
        p.wait()
        let checked = try FileManager.default.contents(atPath: set + "/MANIFEST.json").map { [UInt8]($0) }
        let found = p.result(setDir: set, manifestBytes: try #require(checked)) != nil
        #expect(found)
        // Another run extends the set between the prefetch and this run's lock.
        _ = try backup(inst, set, incremental: true)
        try load(inst, from: 3000, count: 1500)
        let now = try #require(FileManager.default.contents(atPath: set + "/MANIFEST.json").map { [UInt8]($0) })
        let stale = p.result(setDir: set, manifestBytes: now) == nil
        #expect(stale, "the prefetch's result stands for other bytes")
        var o = Self.options(set)
        o.setPrefetch = p
        // With the prefetch's stale manifest the run would refuse (its chain ends a backup
        // earlier than the instance's record) or write a manifest without the other run's logs.
        let sum = try JetBackupInstance.run(inst, o)
        #expect(sum.generationsTruncated != nil)
        let m = try SetVerifier().manifest(in: set).1
        #expect(m.chain.count == 3)
        try Self.closeAndRestore(inst, set, s)
    }

    @Test func aDamageThePrefetchFoundIsRefusedByTheRunsOwnCheck() throws {
        let s = Scratch()
        defer { s.remove() }
        let (ip, inst, set) = try Self.setWithAFullBackup(s)
        defer { try? inst.close() }
        let m = try SetVerifier().manifest(in: set).1
        let log = try #require(m.files.first { $0.kind == .log })
        flipByte(set + "/" + log.name, at: Int(log.size / 2))
        let p = try #require(SetPrefetch.start(Self.options(set)))
        p.wait()
        let bytes = try #require(FileManager.default.contents(atPath: set + "/MANIFEST.json").map { [UInt8]($0) })
        let refused = p.result(setDir: set, manifestBytes: bytes) == nil
        #expect(refused, "the prefetch found the damage")
        let before = snapshotTree(set)
        let headersBefore = try DestinationTests.record(ip)
        var o = Self.options(set)
        o.setPrefetch = p
        do {
            _ = try JetBackupInstance.run(inst, o)
            Issue.record("the incremental into the damaged set succeeded")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure, "\(e)")
        }
        #expect(snapshotTree(set) == before)
        #expect(try DestinationTests.record(ip) == headersBefore)
    }
}
