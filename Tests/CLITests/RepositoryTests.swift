import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Repositories through the built binary: backup --repo (full, incremental, the automatic
/// full and its reason), list, expire, verify/show/restore --repo --set, status, hostile
/// repositories, lock waiting, kill -9 rounds and a simulated month of cron.
@Suite(.serialized) struct RepositoryTests {
    final class Env {
        let t = Temp()
        var inst: String { t.path("db") }
        var repo: String { t.path("repo") }
        var now: String?

        init(logFileSize: String = "64KiB") throws {
            try run(["init", inst, "--log-file-size", logFileSize], expect: 0)
            try run(["db", "create", "app", "-i", inst], expect: 0)
            try run(["repo", "init", repo], expect: 0)
        }

        @discardableResult
        func run(_ args: [String], expect: Int32? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Binary.Result {
            let r = try Binary.run(args, env: now.map { ["JETBACKUP_NOW": $0] } ?? [:])
            if let expect {
                #expect(r.status == expect, "\(args.joined(separator: " ")): \(r.stdout) \(r.stderr)", sourceLocation: sourceLocation)
            }
            return r
        }

        func load(_ n: Int, seed: Int) throws { try run(["load", "app", "--records", String(n), "--seed", String(seed), "-i", inst], expect: 0) }
        func digest(_ i: String? = nil) throws -> String {
            json(try run(["digest", "app", "--json", "-i", i ?? inst], expect: 0).stdout)["digest"] as? String ?? "?"
        }
        func backup(_ extra: [String] = ["--incremental"]) throws -> [String: Any] {
            json(try run(["backup", "--repo", repo, "--json", "-i", inst] + extra, expect: 0).stdout)
        }
        func sets() throws -> [[String: Any]] {
            json(try run(["list", repo, "--json"], expect: 0).stdout)["sets"] as? [[String: Any]] ?? []
        }
        func restoreDigest(_ label: String?, extra: [String] = []) throws -> String {
            let target = t.path("r-\(UUID().uuidString)")
            try run(["restore", "--repo", repo, "--to", target] + (label.map { ["--set", $0] } ?? []) + extra, expect: 0)
            defer { try? FileManager.default.removeItem(atPath: target) }
            return try digest(target)
        }
    }

    @Test func incrementalExtendsTheNewestSetOrTakesAFullAndSaysWhy() throws {
        let e = try Env()
        try e.load(500, seed: 1)
        let first = try e.backup()
        #expect(first["type"] as? String == "full")
        #expect((first["reason"] as? String)?.contains("no set") == true)
        let d1 = try e.digest()
        try e.load(300, seed: 2)
        let second = try e.backup()
        #expect(second["type"] as? String == "incremental" && second["label"] as? String == first["label"] as? String)
        #expect(second["reason"] is NSNull)
        let d2 = try e.digest()
        // A full taken outside the repository breaks the chain: the next run takes a full.
        try FileManager.default.createDirectory(atPath: e.t.path("elsewhere"), withIntermediateDirectories: false)
        try e.run(["backup", e.t.path("elsewhere"), "-i", e.inst], expect: 0)
        try e.load(100, seed: 3)
        let third = try e.backup()
        #expect(third["type"] as? String == "full")
        #expect((third["reason"] as? String)?.contains("cannot be extended") == true, "\(third)")
        let d3 = try e.digest()
        // A plain `backup --repo` is a full.
        let labels = try e.sets().compactMap { $0["label"] as? String }
        #expect(labels.count == 2 && labels == labels.sorted())
        #expect(try e.restoreDigest(labels[0]) == d2)
        #expect(try e.restoreDigest(nil) == d3)
        #expect(d1 != d2)
        // The event log of the repository records both decisions.
        let events = try String(contentsOfFile: e.repo + "/" + Repository.eventsName, encoding: .utf8)
        #expect(events.contains("cannot be extended") && events.contains("no set yet"))
        // A restored instance has no backup recorded: its first repository backup is a full.
        let restored = e.t.path("restored")
        try e.run(["restore", "--repo", e.repo, "--to", restored], expect: 0)
        let r = json(try e.run(["backup", "--repo", e.repo, "--incremental", "--json", "-i", restored], expect: 0).stdout)
        #expect(r["type"] as? String == "full" && (r["reason"] as? String)?.contains("cannot be extended") == true, "\(r)")
    }

    @Test func fullEveryTakesAFullWhenTheNewestFullIsOldEnough() throws {
        let e = try Env()
        e.now = "2026-11-01T00:00:00Z"
        try e.load(100, seed: 1)
        #expect(try e.backup(["--incremental", "--full-every", "1d"])["type"] as? String == "full")
        e.now = "2026-11-01T23:59:00Z"
        #expect(try e.backup(["--incremental", "--full-every", "1d"])["type"] as? String == "incremental")
        e.now = "2026-11-02T00:00:00Z"
        let r = try e.backup(["--incremental", "--full-every", "1d"])
        #expect(r["type"] as? String == "full" && (r["reason"] as? String)?.contains("due every 1d") == true, "\(r)")
        #expect(r["label"] as? String == "20261102T000000Z-full")
        // The same second again: the label moves on by a second, never reused.
        #expect(try e.backup([])["label"] as? String == "20261102T000001Z-full")
        let h = try e.run(["backup", "--repo", e.repo, "--full-every", "1d", "-i", e.inst], expect: 64)
        #expect(h.stderr.contains("--full-every applies to --repo --incremental"))
    }

    @Test func verifyShowAndRestoreTakeRepoAndSet() throws {
        let e = try Env()
        try e.load(200, seed: 1)
        let a = try e.backup([])["label"] as? String ?? ""
        let da = try e.digest()
        try e.load(200, seed: 2)
        e.now = "2099-01-01T00:00:00Z"
        let b = try e.backup([])["label"] as? String ?? ""
        #expect(b == "20990101T000000Z-full")
        #expect(try e.run(["show", "--repo", e.repo, "--json"], expect: 0).stdout.contains(b))
        #expect(try e.run(["show", "--repo", e.repo, "--set", a, "--json"], expect: 0).stdout.contains(a))
        #expect(try e.run(["verify", "--repo", e.repo, "--set", a], expect: 0).stdout.contains(a))
        #expect(try e.restoreDigest(a) == da)
        let sets = try e.sets()
        #expect((sets.first { $0["label"] as? String == a }?["lastVerified"] as? [String: Any])?["ok"] as? Bool == true)
        #expect(sets.first { $0["label"] as? String == b }?["lastVerified"] is NSNull)
        #expect(try e.run(["show", "--repo", e.repo, "--set", "../x"], expect: 64).stderr.contains("not a set label"))
        #expect(try e.run(["show", "--repo", e.repo, "--set", "20000101T000000Z-full"], expect: 73).stderr.contains("holds no set"))
        #expect(try e.run(["show", "--set", a], expect: 64).stderr.contains("--set needs --repo"))
        // A verify that fails is recorded: the set is listed as damaged from then on.
        let img = e.repo + "/" + a + "/app.edb"
        try flipOneByte(img, at: 3 * 4096 + 100)
        try e.run(["verify", "--repo", e.repo, "--set", a], expect: 65)
        #expect(try e.sets().first { $0["label"] as? String == a }?["state"] as? String == "damaged")
    }

    @Test func restoreUntilGenerationStopsAtThatGeneration() throws {
        let e = try Env()
        try e.load(300, seed: 1)
        let full = try e.backup([])
        let d1 = try e.digest()
        try e.load(300, seed: 2)
        let inc = try e.backup()
        let d2 = try e.digest()
        let fullHigh = try #require(Int((full["generationsCopied"] as? String ?? "").split(separator: "-").last ?? ""))
        let incRange = (inc["generationsCopied"] as? String ?? "").split(separator: "-").compactMap { Int($0) }
        #expect(incRange.count == 2 && incRange[1] > fullHigh)
        #expect(try e.restoreDigest(nil, extra: ["--until-generation", String(fullHigh)]) == d1)
        #expect(try e.restoreDigest(nil, extra: ["--until-generation", String(incRange[1])]) == d2)
        let target = e.t.path("t")
        let early = try e.run(["restore", "--repo", e.repo, "--to", target, "--until-generation", String(fullHigh - 1)], expect: 64)
        #expect(early.stderr.contains("before the consistent point"))
        let late = try e.run(["restore", "--repo", e.repo, "--to", target, "--until-generation", String(incRange[1] + 1)], expect: 64)
        #expect(late.stderr.contains("after the end"))
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func expireDeletesWholeSetsOnlyAndNeverTheNewest() throws {
        let e = try Env()
        var labels: [String] = []
        for d in 1...5 {
            e.now = "2026-11-0\(d)T00:00:00Z"
            try e.load(50, seed: d)
            labels.append(try e.backup([])["label"] as? String ?? "")
        }
        let dry = try e.run(["expire", e.repo, "--keep-full", "2", "--dry-run", "--json"], expect: 0)
        #expect((json(dry.stdout)["sets"] as? [[String: Any]])?.filter { $0["action"] as? String == "would delete" }.count == 3)
        #expect(try e.sets().count == 5)
        let r = try e.run(["expire", e.repo, "--keep-full", "2", "--keep-days", "2.5"], expect: 0)
        // Day 5 now: the 2 newest (days 4, 5) and, for 2.5 days back (day 2.5), the sets ending
        // after it (day 3) and the last one before it (day 2).
        #expect(r.stdout.contains("\(labels[0])  deleted"), "\(r.stdout)")
        #expect(try e.sets().compactMap { $0["label"] as? String } == Array(labels[1...]))
        let events = try String(contentsOfFile: e.repo + "/" + Repository.eventsName, encoding: .utf8)
        #expect(events.contains("removed set \(labels[0])"))
        try e.run(["expire", e.repo, "--keep-full", "1"], expect: 0)
        #expect(try e.sets().compactMap { $0["label"] as? String } == [labels[4]])
        try e.run(["expire", e.repo, "--keep-full", "0"], expect: 64)
        #expect(try e.restoreDigest(nil) == (try e.digest()))
    }

    @Test func hostileRepositoriesAreRefusedOrSkipped() throws {
        let e = try Env()
        try e.load(100, seed: 1)
        let good = try e.backup([])["label"] as? String ?? ""
        let fm = FileManager.default
        // A set without a manifest (its files kept), a label that is a symlink, a stray name,
        // and a copy of the good set under another label.
        try fm.copyItem(atPath: e.repo + "/" + good, toPath: e.repo + "/20000101T000000Z-full")
        try fm.removeItem(atPath: e.repo + "/20000101T000000Z-full/MANIFEST.json")
        try fm.createSymbolicLink(atPath: e.repo + "/20010101T000000Z-full", withDestinationPath: e.repo + "/" + good)
        try fm.createDirectory(atPath: e.repo + "/notes", withIntermediateDirectories: false)
        var sets = try e.sets()
        #expect(sets.first { $0["label"] as? String == "20000101T000000Z-full" }?["state"] as? String == "damaged")
        #expect(sets.count == 2)
        let list = try e.run(["list", e.repo], expect: 0)
        #expect(list.stderr.contains("20010101T000000Z-full: is a symbolic link") && list.stderr.contains("notes: not a set label"))
        #expect(try e.run(["show", "--repo", e.repo, "--set", "20010101T000000Z-full"], expect: 73).stderr.contains("symbolic link"))
        // Expire removes neither the damaged set nor what is not a set.
        let x = try e.run(["expire", e.repo, "--keep-full", "1"], expect: 0)
        #expect(x.stdout.contains("20000101T000000Z-full  kept  damaged"))
        #expect(fm.fileExists(atPath: e.repo + "/20000101T000000Z-full") && fm.fileExists(atPath: e.repo + "/notes"))
        #expect(fm.fileExists(atPath: e.repo + "/" + good + "/MANIFEST.json"))
        // Two sets claiming the same full backup: neither is trusted, an incremental takes a full.
        try fm.copyItem(atPath: e.repo + "/" + good, toPath: e.repo + "/20020101T000000Z-full")
        sets = try e.sets()
        #expect(sets.filter { $0["state"] as? String == "damaged" }.count == 3, "\(sets)")
        #expect(try e.run(["restore", "--repo", e.repo, "--to", e.t.path("t")], expect: 78).stderr.contains("no complete set"))
        let inc = try e.backup()
        #expect(inc["type"] as? String == "full", "\(inc)")
        // A marker of a future version: refused, nothing read or written.
        let marker = e.repo + "/" + Repository.markerName
        try Data("{\"format\":\"jetbackup-repository\",\"formatVersion\":99,\"created\":\"x\"}".utf8).write(to: URL(fileURLWithPath: marker))
        let before = treeContents(e.repo)
        #expect(try e.run(["list", e.repo], expect: 64).stderr.contains("newer jetbackup"))
        try e.run(["backup", "--repo", e.repo, "-i", e.inst], expect: 64)
        try e.run(["expire", e.repo, "--keep-full", "1"], expect: 64)
        #expect(treeContents(e.repo) == before)
        // Not a repository at all.
        #expect(try e.run(["list", e.t.path("db")], expect: 73).stderr.contains("not a repository"))
        #expect(try e.run(["repo", "init", e.inst], expect: 73).stderr.contains("not empty"))
    }

    @Test func statusAnswersOkTooOldDamagedAndNoBackup() throws {
        let e = try Env()
        e.now = "2026-11-01T00:00:00Z"
        let none = try e.run(["status", e.repo, "--max-age", "2h"], expect: 78)
        #expect(none.stdout.hasPrefix("NO BACKUP:") && none.stdout.split(separator: "\n").count == 1)
        try e.load(100, seed: 1)
        let label = try e.backup()["label"] as? String ?? ""
        e.now = "2026-11-01T01:59:00Z"
        #expect(try e.run(["status", e.repo, "--max-age", "2h"], expect: 0).stdout.hasPrefix("OK:"))
        e.now = "2026-11-01T02:01:00Z"
        #expect(try e.run(["status", e.repo, "--max-age", "2h"], expect: 1).stdout.hasPrefix("TOO OLD:"))
        e.now = "2026-11-01T01:00:00Z"
        try FileManager.default.removeItem(atPath: e.repo + "/" + label + "/SHA256SUMS")
        let d = try e.run(["status", e.repo, "--max-age", "2h"], expect: 65)
        #expect(d.stdout.hasPrefix("DAMAGED:"), "\(d.stdout)")
    }

    @Test func metricsFileIsWrittenOnSuccessAndFailure() throws {
        let e = try Env()
        let m = e.t.path("jetbackup.prom")
        try e.load(100, seed: 1)
        try e.run(["backup", "--repo", e.repo, "--incremental", "--metrics-file", m, "-i", e.inst], expect: 0)
        let ok = try String(contentsOfFile: m, encoding: .utf8)
        #expect(ok.contains("jetbackup_last_exit_status{job=\"backup\",instance=\"\(e.inst)\",repository=\"\(e.repo)\"} 0"))
        #expect(ok.contains("jetbackup_repository_sets{job=\"backup\"") && ok.contains("jetbackup_last_bytes_stored{job=\"backup\""))
        try e.run(["expire", e.repo, "--keep-full", "1", "--metrics-file", m], expect: 0)
        // A failed backup (the instance is locked by nobody, but the repository is gone) records its status.
        try FileManager.default.removeItem(atPath: e.repo + "/" + Repository.markerName)
        try e.run(["backup", "--repo", e.repo, "--metrics-file", m, "-i", e.inst], expect: 73)
        let after = try String(contentsOfFile: m, encoding: .utf8)
        #expect(after.contains("jetbackup_last_exit_status{job=\"backup\",instance=\"\(e.inst)\",repository=\"\(e.repo)\"} 73"))
        #expect(after.contains("jetbackup_last_success_timestamp_seconds{job=\"backup\""))
        #expect(after.contains("jetbackup_last_exit_status{job=\"expire\",repository=\"\(e.repo)\"} 0"))
        #expect(!FileManager.default.fileExists(atPath: m + ".tmp"))
    }

    @Test func waitWaitsForAHeldLockAndADeadHolderNeverBlocks() throws {
        let e = try Env()
        try e.load(50, seed: 1)
        _ = try e.backup()
        // Held by this process: without --wait at once 75; with --wait it gets it once released.
        let lock = try PosixFileSystem().lock(e.repo + "/" + Repository.lockName, owner: "test holder")
        let t0 = Date()
        let busy = try e.run(["expire", e.repo, "--keep-full", "1"], expect: 75)
        #expect(busy.stderr.contains("test holder") && Date().timeIntervalSince(t0) < 2)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.7) { lock.release() }
        let t1 = Date()
        try e.run(["expire", e.repo, "--keep-full", "1", "--wait", "10s"], expect: 0)
        #expect(Date().timeIntervalSince(t1) >= 0.6)
        // A wait that runs out fails with the holder's name.
        let held = try PosixFileSystem().lock(e.repo + "/" + Repository.lockName, owner: "test holder")
        let t2 = Date()
        let out = try e.run(["backup", "--repo", e.repo, "--wait", "1s", "-i", e.inst], expect: 75)
        #expect(out.stderr.contains("waited 1 s") && Date().timeIntervalSince(t2) >= 1)
        held.release()
        // The instance lock too.
        let il = try PosixFileSystem().lock(e.inst + "/" + FileNames.lock, owner: "instance holder")
        try e.run(["get", "app", "x", "-i", e.inst], expect: 75)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { il.release() }
        try e.run(["get", "app", "x", "-i", e.inst, "--wait", "10s"], expect: 1)
        // A holder killed with -9 leaves the file but not the lock.
        let p = try Binary.start(["backup", "--repo", e.repo, "--incremental", "-i", e.inst])
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        try e.run(["expire", e.repo, "--keep-full", "1"], expect: 0)
    }

    @Test func maxRateHoldsVerifyNearTheRate() throws {
        let e = try Env(logFileSize: "1MiB")
        try e.load(20000, seed: 1)
        _ = try e.backup([])
        let set = try #require(try e.sets().first)
        let bytes = try #require(set["bytes"] as? Int)
        // About 2 s at the rate; within 10 % (plus the process's own start).
        let rate = bytes / 2
        let t0 = Date()
        try e.run(["verify", "--repo", e.repo, "--max-rate", String(rate)], expect: 0)
        let took = Date().timeIntervalSince(t0)
        #expect(took >= 1.8 && took <= 2.2 + 0.3, "\(took) s for \(bytes) bytes at \(rate)/s")
        try e.run(["verify", "--repo", e.repo, "--max-rate", "fast"], expect: 64)
    }
}

/// Relative path → bytes of every file below `dir` (to prove "nothing was written").
private func treeContents(_ dir: String) -> [String: Data] {
    var out: [String: Data] = [:]
    guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
    while let rel = e.nextObject() as? String {
        out[rel] = FileManager.default.contents(atPath: dir + "/" + rel) ?? Data()
    }
    return out
}

private func flipOneByte(_ path: String, at offset: Int) throws {
    var d = try Data(contentsOf: URL(fileURLWithPath: path))
    d[offset] ^= 0x40
    try d.write(to: URL(fileURLWithPath: path))
}
