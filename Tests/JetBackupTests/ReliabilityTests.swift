import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

@Suite struct ReliabilityTests {
    static let damageCodes: Set<JetError.Code> = [
        .readVerifyFailure, .logReadVerifyFailure, .databaseCorrupted, .checkpointCorrupt, .badLogSignature,
        .missingLogFile, .givenLogFileHasBadSignature, .givenLogFileIsNotContiguous, .invalidDatabase,
    ]

    /// Flip a random bit in a random file of an instance or a backup set; every damage is
    /// detected with a data-damage error or is harmless (the content is the undamaged
    /// truth). Zero silent wrong results.
    @Test func randomizedCorruptionCampaign() throws {
        let s = Scratch()
        // An instance that needs recovery (commits after its checkpoint, never closed) …
        let ip = try s.makeInstance { $0.checkpointDepth = 8 << 20 }
        var inst: Instance? = try open(ip)
        try load(inst!, count: 1500)
        try load(inst!, "notes", count: 200, seed: 4, size: 3000)
        try inst!.flushCheckpoint()
        try load(inst!, from: 1500, count: 400)
        // … and a set: full + incremental (compressed).
        let set = s.mkdir("set")
        _ = try backup(inst!, set)
        try load(inst!, from: 1900, count: 300)
        _ = try backup(inst!, set, incremental: true, level: 3)
        let setTruth = try digest(inst!)
        try load(inst!, from: 2200, count: 50)
        let truth2 = try digest(inst!)
        inst = nil // dropped without close: the next open recovers, as after a crash
        let n = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long" ? 1000 : 50
        var rng = SplitMix64(seed: UInt64(Date().timeIntervalSince1970 * 1000))
        var detected = 0, harmless = 0, silent = 0
        let pristineInstance = s.path("pristine-inst"), pristineSet = s.path("pristine-set")
        try FileManager.default.copyItem(atPath: ip, toPath: pristineInstance)
        try FileManager.default.copyItem(atPath: set, toPath: pristineSet)
        for trial in 0..<n {
            let onSet = trial % 2 == 1
            let work = s.path("t\(trial)")
            try FileManager.default.copyItem(atPath: onSet ? pristineSet : pristineInstance, toPath: work)
            let files = s.list(work).filter { $0 != "LOCK" && $0 != "events.log" }
            let name = files[Int(rng.next() % UInt64(files.count))]
            let size = (try FileManager.default.attributesOfItem(atPath: work + "/" + name)[.size] as? Int) ?? 0
            guard size > 0 else { continue }
            flipByte(work + "/" + name, at: Int(rng.next() % UInt64(size)), mask: UInt8(1 << (rng.next() % 8)))
            if onSet {
                do {
                    _ = try SetVerifier().verify(work)
                    // verify passed: the restore must give the truth.
                    _ = try restore(work, work + "-r")
                    if try digest(work + "-r") == setTruth { harmless += 1 } else { silent += 1; Issue.record("trial \(trial): \(name) damaged, set restored to a wrong digest") }
                } catch let e as JetError {
                    if Self.damageCodes.contains(e.code) {
                        detected += 1
                        // restore must refuse too, leaving no target.
                        expectJetError(e.code) { _ = try restore(work, work + "-r") }
                        #expect(!FileManager.default.fileExists(atPath: work + "-r"))
                    } else {
                        Issue.record("trial \(trial): \(name): unexpected \(e)")
                    }
                }
            } else {
                let params = try? Instance.readParameters(at: work)
                let checked = params.flatMap { try? Inspection.check(work, fs: PosixFileSystem(), parameters: $0) }
                do {
                    let d = try digest(work)
                    if d == truth2 {
                        if checked?.ok == false { detected += 1 } else { harmless += 1 }
                    } else {
                        silent += 1
                        Issue.record("trial \(trial): \(name) damaged, instance returned a wrong digest")
                    }
                } catch let e as JetError {
                    if Self.damageCodes.contains(e.code) || (name == "instance.json" && e.code == .invalidParameter) {
                        detected += 1
                    } else {
                        Issue.record("trial \(trial): \(name): unexpected \(e)")
                    }
                }
            }
            try? FileManager.default.removeItem(atPath: work)
            try? FileManager.default.removeItem(atPath: work + "-r")
        }
        print("corruption campaign: \(n) trials, \(detected) detected, \(harmless) harmless, \(silent) silent wrong results")
        #expect(silent == 0)
    }

    /// A page caught in the middle of a write is read again and not reported; a page that
    /// stays bad fails after a bounded number of retries.
    @Test func pageChangingUnderTheBackupIsReread() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i"); fs.makeDirectories("/b"); fs.makeDirectories("/c")
        var p = InstanceParameters(); p.pageSize = 4096; p.logFileSize = 64 * 1024
        try Instance.create(at: "/i", parameters: p, fs: fs)
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        try load(inst, count: 800)
        try inst.flushCheckpoint()
        final class Count: @unchecked Sendable { var n = 0; let lock = NSLock() }
        let torn = Count()
        // The first three reads of page 6 see a half-written page.
        fs.readHook = { path, offset, buf in
            guard path == "/i/app.edb" else { return }
            let pg = 6 * 4096
            if offset <= Int64(pg), offset + Int64(buf.count) >= Int64(pg + 4096) {
                torn.lock.lock(); defer { torn.lock.unlock() }
                if torn.n < 3 { torn.n += 1; buf[pg - Int(offset) + 3000] ^= 0xFF }
            }
        }
        var o = BackupOptions(directory: "/b"); o.fs = fs
        _ = try JetBackupInstance.run(inst, o)
        #expect(torn.n == 3)
        _ = try SetVerifier(fs: fs).verify("/b")
        // Always bad: -1018 after the retries, in bounded time.
        fs.readHook = { path, offset, buf in
            guard path == "/i/app.edb" else { return }
            let pg = 6 * 4096
            if offset <= Int64(pg), offset + Int64(buf.count) >= Int64(pg + 4096) { buf[pg - Int(offset) + 3000] ^= 0xFF }
        }
        let t0 = Date()
        o.directory = "/c"
        expectJetError(.readVerifyFailure) { _ = try JetBackupInstance.run(inst, o) }
        #expect(Date().timeIntervalSince(t0) < 10)
        fs.readHook = nil
        try inst.close()
    }

    /// Files the tool creates are its owner's only; links are refused, not followed.
    @Test func permissionsAndSymlinks() throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.createPathIfNotExist = true }
        let inst = try open(ip)
        try load(inst, count: 300)
        _ = try backup(inst, s.path("made/by/backup"))
        let atomic = s.mkdir("atomic")
        _ = try backup(inst, atomic, atomic: true, level: 1)
        try inst.close()
        _ = try restore(s.path("made/by/backup"), s.path("restored"))
        func mode(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p))?[.posixPermissions] as? Int ?? 0) & 0o777 }
        for dir in [ip, s.path("made/by/backup"), atomic + "/new", s.path("restored")] {
            #expect(mode(dir) == 0o700, "\(dir) is \(String(mode(dir), radix: 8))")
            for f in s.list(dir) where !f.hasPrefix(".") {
                #expect(mode(dir + "/" + f) == 0o600, "\(dir)/\(f) is \(String(mode(dir + "/" + f), radix: 8))")
            }
        }
        // A database file that is a symbolic link is refused.
        try FileManager.default.moveItem(atPath: ip + "/app.edb", toPath: s.path("elsewhere.edb"))
        try FileManager.default.createSymbolicLink(atPath: ip + "/app.edb", withDestinationPath: s.path("elsewhere.edb"))
        expectJetError(.invalidDatabase) { _ = try open(ip) }
        // A restore TARGET that is a link is refused.
        try FileManager.default.createSymbolicLink(atPath: s.path("link-target"), withDestinationPath: s.mkdir("real-target"))
        expectJetError(.invalidPath) { _ = try restore(s.path("made/by/backup"), s.path("link-target")) }
        #expect(s.list(s.path("real-target")).isEmpty)
    }
}
