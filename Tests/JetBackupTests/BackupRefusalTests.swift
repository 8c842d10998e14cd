import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Every refusal of SPEC 5 for backup, and what is left afterwards: the destination as it
/// was, headers unchanged, no log truncated.
@Suite struct BackupRefusalTests {
    struct State: Equatable {
        var dir: [String: Data]
        var headers: [String]
        var gens: [UInt32]
    }

    static func state(_ ip: String, _ dir: String) throws -> State {
        State(dir: snapshotTree(dir),
              headers: try headers(ip).map { "\($0.name) \(String(describing: $0.header.fullPrev)) \(String(describing: $0.header.incPrev))" },
              gens: generations(ip))
    }

    @Test func argumentRefusals() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 200)
        let dir = s.mkdir("b")
        var o = BackupOptions(directory: dir)
        o.snapshot = true
        expectJetError(.invalidGrbit) { _ = try JetBackupInstance.run(inst, o) }
        o = BackupOptions(directory: dir); o.atomic = true; o.incremental = true
        expectJetError(.invalidGrbit) { _ = try JetBackupInstance.run(inst, o) }
        o = BackupOptions(directory: dir); o.compressionLevel = 20
        expectJetError(.invalidParameter) { _ = try JetBackupInstance.run(inst, o) }
        expectJetError(.invalidPath) { _ = try backup(inst, s.path("missing")) }
        #expect(!FileManager.default.fileExists(atPath: s.path("missing")))
        FileManager.default.createFile(atPath: dir + "/user-file", contents: Data("mine".utf8))
        expectJetError(.backupDirectoryNotEmpty) { _ = try backup(inst, dir) }
        #expect(s.list(dir) == ["user-file"])
        expectJetError(.missingFullBackup) { _ = try backup(inst, s.mkdir("e"), incremental: true) }
        try inst.close()
    }

    @Test func createPathIfNotExist() throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.createPathIfNotExist = true }
        let inst = try open(ip)
        try load(inst, count: 100)
        _ = try backup(inst, s.path("a/b/c"))
        try inst.close()
        _ = try SetVerifier().verify(s.path("a/b/c"))
    }

    @Test func loggingDisabledAndCircular() throws {
        let s = Scratch()
        let nl = try s.makeInstance("nolog") { $0.loggingEnabled = false }
        let a = try open(nl)
        try load(a, count: 100)
        expectJetError(.loggingDisabled) { _ = try backup(a, s.mkdir("b1")) }
        expectJetError(.loggingDisabled) { _ = try backup(a, nil) }
        try a.close()
        let cl = try s.makeInstance("circ") { $0.circularLogging = true; $0.checkpointDepth = 64 * 1024 }
        let b = try open(cl)
        try load(b, count: 2000)
        // Circular logging deleted generations older than the checkpoint on its own.
        #expect(generations(cl).first.map { $0 >= 2 } ?? true)
        let dir = s.mkdir("b2")
        _ = try backup(b, dir)
        expectJetError(.invalidBackup) { _ = try backup(b, dir, incremental: true) }
        let sum = try backup(b, nil)
        #expect(sum.generationsTruncated == nil)
        try b.close()
        _ = try restore(dir, s.path("r"))
        #expect(try digest(s.path("r")) == digest(cl))
    }

    @Test func concurrentBackupOfSameInstance() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 100)
        let session = try inst.beginBackup(.full)
        expectJetError(.backupInProgress) { _ = try backup(inst, s.mkdir("b")) }
        expectJetError(.backupInProgress) { _ = try inst.truncateLogs() }
        #expect(s.list(s.path("b")).isEmpty)
        session.abort()
        _ = try backup(inst, s.path("b"))
        try inst.close()
        // A second process: the instance lock refuses at once, naming the holder.
        let holder = try open(ip)
        expectJetError(.fileAccessDenied) { _ = try Instance.open(at: ip, owner: "other") }
        try holder.close()
    }

    @Test func incrementalRefusals() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 1500)
        let d1 = s.mkdir("d1"), d2 = s.mkdir("d2")
        _ = try backup(inst, d1)
        try load(inst, from: 1500, count: 500)
        _ = try backup(inst, d2)
        // d1 holds an older full: not the set the next incremental extends.
        let before = try Self.state(ip, d1)
        expectJetError(.invalidBackupSequence) { _ = try backup(inst, d1, incremental: true) }
        expectJetError(.invalidBackupSequence) { _ = try backup(inst, s.mkdir("empty"), incremental: true) }
        #expect(try Self.state(ip, d1) == before)
        // Truncate-only deletes what the incremental would need: -569 says take a full.
        try load(inst, from: 2000, count: 800)
        let t = try backup(inst, nil)
        #expect(t.generationsTruncated != nil)
        let mid = try Self.state(ip, d2)
        expectJetError(.missingFileToBackup) { _ = try backup(inst, d2, incremental: true) }
        #expect(try Self.state(ip, d2).dir == mid.dir)
        #expect(try Self.state(ip, d2).headers == mid.headers)
        try inst.close()
        let lines = try EventLog(fs: PosixFileSystem(), path: ip + "/events.log").lines(limit: 200).joined()
        #expect(lines.contains("\"id\":224"))
        #expect(lines.contains("\"id\":214"))
    }

    @Test func truncateOnlyReportsNothingToTruncate() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 10)
        _ = try backup(inst, nil)
        let again = try backup(inst, nil)
        #expect(again.generationsTruncated == nil)
        try inst.close()
        let lines = try EventLog(fs: PosixFileSystem(), path: ip + "/events.log").lines(limit: 50).joined()
        #expect(lines.contains("\"id\":225"))
    }

    @Test func corruptPageFailsNamingDatabaseAndPage() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        var inst = try open(ip)
        try load(inst, count: 2000)
        try inst.close()
        // Damage a data page on disk (page 5), then back up: -1018 naming file and page.
        flipByte(ip + "/app.edb", at: 5 * 4096 + 100)
        inst = try open(ip)
        let dir = s.mkdir("b")
        let before = try Self.state(ip, dir)
        do {
            _ = try backup(inst, dir)
            Issue.record("backup of a damaged database succeeded")
        } catch let e as JetError {
            #expect(e.code == .readVerifyFailure)
            #expect(e.message.contains("page 5") && e.message.contains("app.edb"))
        }
        #expect(try Self.state(ip, dir) == before)
        try? inst.close()
    }

    @Test func corruptLogGenerationFailsNamingFile() throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.checkpointDepth = 4 << 20 }
        let inst = try open(ip)
        try load(inst, count: 500)
        let dir = s.mkdir("b")
        _ = try backup(inst, dir)
        // New generations the incremental needs; damage one of them.
        try load(inst, from: 500, count: 3000)
        let gens = generations(ip)
        let victim = gens[gens.count / 2]
        flipByte(ip + "/" + FileNames.archivedLog(victim), at: 5000)
        let before = try Self.state(ip, dir)
        do {
            _ = try backup(inst, dir, incremental: true)
            Issue.record("backup with a damaged log generation succeeded")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure)
            #expect(e.message.contains(FileNames.archivedLog(victim)))
        }
        let after = try Self.state(ip, dir)
        #expect(after.dir == before.dir && after.headers == before.headers)
        #expect(Set(before.gens).isSubset(of: Set(after.gens)), "a log was truncated by a failed backup")
        try? inst.close()
    }

    @Test func cancelAndThrowingCallbackAndShutdownAbortCleanly() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 4000)
        // A throwing status callback aborts at its first progress event.
        struct Stop: Error {}
        let dir = s.mkdir("b")
        let before = try Self.state(ip, dir)
        var o = BackupOptions(directory: dir)
        #expect(throws: (any Error).self) {
            _ = try JetBackupInstance.run(inst, o) { st in if case .progress = st { throw Stop() } }
        }
        #expect(try Self.state(ip, dir) == before)
        // Cancellation (a signal in the CLI): JET_errTermInProgress, event 215.
        o.isCancelled = { true }
        expectJetError(.termInProgress) { _ = try JetBackupInstance.run(inst, o) }
        #expect(try Self.state(ip, dir) == before)
        // Shutdown during a backup.
        o.isCancelled = { false }
        var fired = false
        expectJetError(.termInProgress) {
            _ = try JetBackupInstance.run(inst, o) { st in
                if case .progress = st, !fired { fired = true; inst.beginTermination() }
            }
        }
        #expect(try Self.state(ip, dir) == before)
        expectJetError(.termInProgress) { _ = try backup(inst, dir) }
        try inst.close()
        let lines = try EventLog(fs: PosixFileSystem(), path: ip + "/events.log").lines(limit: 100).joined()
        #expect(lines.contains("\"id\":215"))
        // Nothing changed: a later backup works.
        let again = try open(ip)
        _ = try backup(again, dir)
        try again.close()
    }

    @Test func notAllowedDuringStartAndAfterFatalError() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i")
        var p = InstanceParameters()
        p.pageSize = 4096; p.logFileSize = 64 * 1024
        try Instance.create(at: "/i", parameters: p, fs: fs)
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        try inst.createDatabase("a")
        // A failed log write makes the instance unavailable: backups refuse with -1090.
        fs.fail(afterOperations: 1, with: JetError(.diskIO, "EIO"))
        #expect(throws: JetError.self) { try inst.commit([.put(database: "a", key: [1], value: [1])]) }
        var o = BackupOptions(directory: "/b")
        o.fs = fs
        fs.makeDirectories("/b")
        expectJetError(.instanceUnavailable) { _ = try JetBackupInstance.run(inst, o) }
        try? inst.close()
        #expect(try fs.list("/b").isEmpty)
        // While the instance still initializes or recovers (ESE: JetBackupInstance during
        // JetInit): -523. `Instance.open` hands out only a running instance, so the state is
        // set here from inside the module, as a recovery in progress would leave it.
        let starting = try Instance.open(at: "/i", fs: fs, owner: "t")
        starting.stateValue = .initializing
        expectJetError(.backupNotAllowedYet) { _ = try JetBackupInstance.run(starting, o) }
        #expect(try fs.list("/b").isEmpty)
        starting.stateValue = .running
        _ = try JetBackupInstance.run(starting, o)
        try starting.close()
    }
}
