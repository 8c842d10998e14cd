import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Where a backup may write: a destination claimed for the whole run, outside the instance,
/// writable, and — for an atomic run — not holding another instance's set.
@Suite struct DestinationTests {
    /// The headers' backup slots and the archived generations of an instance.
    static func record(_ ip: String) throws -> [String] {
        try headers(ip).map { "\($0.name) \(String(describing: $0.header.fullPrev)) \(String(describing: $0.header.incPrev))" }
            + generations(ip).map { "gen \($0)" }
    }

    /// A second instance's backup starting into the directory the first has already checked
    /// but not yet written (its status callback's `.begin` comes right between): without the
    /// claim it found DIR empty, both runs wrote, and the second one recorded a backup.
    @Test(arguments: [false, true])
    func secondInstanceIsRefusedWhileTheFirstHoldsTheDirectory(atomic: Bool) throws {
        let s = Scratch()
        let p1 = try s.makeInstance("i1"), p2 = try s.makeInstance("i2")
        let i1 = try open(p1), i2 = try open(p2)
        try load(i1, count: 1500)
        try load(i2, count: 1500, seed: 9)
        let want = try digest(i1)
        try i2.close()
        let before2 = try Self.record(p2)
        let again2 = try open(p2)
        let dir = s.mkdir("b")
        var o = BackupOptions(directory: dir)
        o.atomic = atomic
        o.owner = "first-run-owner"
        var second: Result<BackupSummary, Error>?
        _ = try JetBackupInstance.run(i1, o) { st in
            guard case .begin = st, second == nil else { return }
            var o2 = BackupOptions(directory: dir)
            o2.atomic = atomic
            second = Result { try JetBackupInstance.run(again2, o2) }
        }
        try i1.close()
        try again2.close()
        switch second {
        case .failure(let e as JetError):
            #expect(e.code == .backupInProgress, "\(e)")
            #expect(e.message.contains(dir) && e.message.contains("first-run-owner") && e.message.contains(p1), "\(e.message)")
        default:
            Issue.record("the second backup into the claimed directory was not refused: \(String(describing: second))")
        }
        #expect(try Self.record(p2) == before2, "the refused instance's headers or logs changed")
        #expect(!s.list(dir).contains(BackupSetLayout.lock), "the lock file outlived the run")
        _ = try SetVerifier().verify(dir)
        _ = try restore(dir, s.path("r"))
        #expect(try digest(s.path("r")) == want)
    }

    /// A lock file left by a killed run holds no lock: every kind runs over it, verify and
    /// restore ignore it, and an otherwise empty directory still counts as empty.
    @Test func lockFileLeftByAKilledRunIsIgnored() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 1000)
        let full = s.mkdir("full"), atomic = s.mkdir("atomic")
        for d in [full, atomic] {
            #expect(FileManager.default.createFile(atPath: d + "/" + BackupSetLayout.lock, contents: Data("pid 1 (killed)".utf8)))
        }
        _ = try backup(inst, full)
        _ = try backup(inst, atomic, atomic: true)
        #expect(!s.list(full).contains(BackupSetLayout.lock) && !s.list(atomic).contains(BackupSetLayout.lock))
        try load(inst, from: 1000, count: 500)
        #expect(FileManager.default.createFile(atPath: atomic + "/" + BackupSetLayout.lock, contents: Data()))
        _ = try backup(inst, atomic, incremental: true)
        let want = try digest(inst)
        try inst.close()
        #expect(FileManager.default.createFile(atPath: atomic + "/new/" + BackupSetLayout.lock, contents: Data("x".utf8)))
        #expect(FileManager.default.createFile(atPath: full + "/" + BackupSetLayout.lock, contents: Data("x".utf8)))
        _ = try SetVerifier().verify(full)
        _ = try SetVerifier().verify(atomic)
        _ = try restore(atomic, s.path("r"))
        #expect(try digest(s.path("r")) == want)
    }

    /// The instance directory, any directory below it (also through a symbolic link), and
    /// any directory holding the instance are refused before anything is created.
    @Test func destinationAtOrBelowTheInstanceIsRefused() throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.createPathIfNotExist = true }
        let inst = try open(ip)
        try load(inst, count: 300)
        let sub = ip + "/sub"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: s.path("link"), withDestinationPath: sub)
        let before = try Self.record(ip)
        let listing = s.list(ip)
        for (dir, atomic, incremental) in [(sub, false, false), (sub, true, false), (sub, false, true), (ip, false, false),
                                           (s.path("link"), false, false), (sub + "/deeper/still", false, false),
                                           (ip + "/../" + FilePaths.lastComponent(ip) + "/sub", true, false), (s.root, true, false)] {
            do {
                var o = BackupOptions(directory: dir)
                o.atomic = atomic
                o.incremental = incremental
                _ = try JetBackupInstance.run(inst, o)
                Issue.record("a backup into \(dir) was accepted")
            } catch let e as JetError {
                #expect(e.code == .invalidPath, "\(dir): \(e)")
                #expect(e.message.contains("outside the instance"), "\(dir): \(e.message)")
            }
        }
        #expect(s.list(sub).isEmpty, "something was written below the instance")
        #expect(s.list(ip) == listing)
        #expect(try Self.record(ip) == before)
        try inst.close()
    }

    /// `--atomic` over another instance's atomic set used to replace it silently; it is
    /// refused, naming the signature, and replaced only when asked.
    @Test func atomicOverAnotherInstancesSetIsRefusedUnlessAsked() throws {
        let s = Scratch()
        let p1 = try s.makeInstance("i1"), p2 = try s.makeInstance("i2")
        let i1 = try open(p1)
        try load(i1, count: 800)
        let d1 = try digest(i1)
        let dir = s.mkdir("a")
        _ = try backup(i1, dir, atomic: true)
        try i1.close()
        let i2 = try open(p2)
        try load(i2, count: 800, seed: 5)
        try i2.close()
        let before = snapshotTree(dir), before2 = try Self.record(p2)
        let again = try open(p2)
        do {
            _ = try backup(again, dir, atomic: true)
            Issue.record("an atomic backup replaced another instance's set")
        } catch let e as JetError {
            #expect(e.code == .backupDirectoryNotEmpty, "\(e)")
            let sig = try SetVerifier().manifest(in: dir).1.logSignature.signature!
            #expect(e.message.contains(String(describing: sig)), "\(e.message)")
        }
        #expect(snapshotTree(dir) == before)
        try again.close()
        #expect(try Self.record(p2) == before2)
        _ = try restore(dir, s.path("r1"))
        #expect(try digest(s.path("r1")) == d1)
        // Asked explicitly: replaced.
        let third = try open(p2)
        var o = BackupOptions(directory: dir)
        o.atomic = true
        o.replaceForeign = true
        _ = try JetBackupInstance.run(third, o)
        let d2 = try digest(third)
        try third.close()
        _ = try restore(dir, s.path("r2"))
        #expect(try digest(s.path("r2")) == d2)
    }

    /// A destination this process cannot write is a bad destination (73), found before any
    /// write: also its parent when the path is to be created, and new/ of an atomic set.
    @Test func readOnlyDestinationIsInvalidPath() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i")
        fs.makeDirectories("/ro")
        fs.makeDirectories("/a")
        var p = InstanceParameters()
        p.pageSize = 4096; p.logFileSize = 64 * 1024; p.createPathIfNotExist = true
        try Instance.create(at: "/i", parameters: p, fs: fs)
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        try load(inst, count: 300)
        var atomicSet = BackupOptions(directory: "/a")
        atomicSet.fs = fs; atomicSet.atomic = true
        _ = try JetBackupInstance.run(inst, atomicSet)
        try load(inst, from: 300, count: 300)
        fs.setReadOnly("/ro")
        fs.setReadOnly("/a/new")
        let slots = try Inspection.databases("/i", fs: fs).map { "\($0.header.fullPrev.map { "\($0.genHigh)" } ?? "-") \($0.header.incPrev.map { "\($0.genHigh)" } ?? "-")" }
        let setBefore = BackupFaultTests.tree(fs, "/a")
        for (dir, atomic, incremental) in [("/ro", false, false), ("/ro", true, false), ("/ro/sub/x", false, false), ("/a", false, true)] {
            var o = BackupOptions(directory: dir)
            o.fs = fs; o.atomic = atomic; o.incremental = incremental
            do {
                _ = try JetBackupInstance.run(inst, o)
                Issue.record("a backup into read-only \(dir) succeeded")
            } catch let e as JetError {
                #expect(e.code == .invalidPath, "\(dir): \(e)")
                #expect(e.message.contains("not writable") && e.message.contains("permission denied"), "\(dir): \(e.message)")
            }
        }
        #expect(try fs.list("/ro").isEmpty)
        #expect(BackupFaultTests.tree(fs, "/a") == setBefore)
        #expect(try Inspection.databases("/i", fs: fs).map { "\($0.header.fullPrev.map { "\($0.genHigh)" } ?? "-") \($0.header.incPrev.map { "\($0.genHigh)" } ?? "-")" } == slots)
        try inst.close()
    }

    /// An incremental after `db create` used to say the instance has no full backup; it names
    /// the database that has none.
    @Test func incrementalAfterANewDatabaseNamesIt() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 500)
        let dir = s.mkdir("b")
        _ = try backup(inst, dir)
        try inst.createDatabase("fresh")
        let before = snapshotTree(dir)
        do {
            _ = try backup(inst, dir, incremental: true)
            Issue.record("an incremental without a full backup of database fresh succeeded")
        } catch let e as JetError {
            #expect(e.code == .missingFullBackup)
            #expect(e.message.contains("database fresh has no full backup") && e.message.contains("take a full backup"), "\(e.message)")
        }
        #expect(snapshotTree(dir) == before)
        try inst.close()
    }
}
