import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// kill -9 of repository backups and expires, and a simulated month of cron on a fake clock.
@Suite(.serialized) struct RepositoryStressTests {
    typealias Env = RepositoryTests.Env

    /// Each round: load, then `backup --repo --incremental` or `expire` killed at a random
    /// moment (or left to finish). After it, every set listed complete verifies, the newest
    /// complete set restores to a content the instance had, and a complete set always exists
    /// once one backup has succeeded.
    @Test func killDashNineDuringRepositoryBackupAndExpire() throws {
        let e = try Env()
        var seen = Set<String>()
        var rng = SystemRandomNumberGenerator()
        var hadComplete = false
        let n = rounds(short: 20, long: 200)
        var killed = 0
        for round in 0..<n {
            try e.load(200, seed: round + 1)
            seen.insert(try e.digest())
            let expire = round % 3 == 2
            let args = expire ? ["expire", e.repo, "--keep-full", "2"]
                : ["backup", "--repo", e.repo, "--incremental", "--full-every", round % 4 == 0 ? "0s" : "1d", "-i", e.inst]
            let p = try Binary.start(args)
            usleep(UInt32.random(in: 0...150_000, using: &rng))
            if kill(p.processIdentifier, SIGKILL) == 0 { killed += 1 }
            p.waitUntilExit()
            let sets = try e.sets()
            let complete = sets.filter { $0["state"] as? String == "complete" }
            if hadComplete { #expect(!complete.isEmpty, "round \(round): no complete set left") }
            hadComplete = hadComplete || !complete.isEmpty
            for s in complete {
                let label = s["label"] as? String ?? ""
                let v = try e.run(["verify", "--repo", e.repo, "--set", label])
                #expect(v.status == 0, "round \(round): set \(label) listed complete does not verify: \(v.stderr)")
            }
            if !complete.isEmpty {
                let d = try e.restoreDigest(nil)
                #expect(seen.contains(d), "round \(round): the newest set restores to content the instance never had")
            }
        }
        // Whatever was killed, the next runs work.
        _ = try e.backup()
        try e.run(["expire", e.repo, "--keep-full", "1"], expect: 0)
        #expect(try e.restoreDigest(nil) == (try e.digest()))
        #expect(!((try? FileManager.default.contentsOfDirectory(atPath: e.repo)) ?? []).contains { $0.hasPrefix(Repository.expiringPrefix) })
        print("repository kill -9: \(n) rounds, \(killed) killed mid-run")
    }

    /// Cron on a fake clock: `backup --incremental --full-every 1d` every few hours and a daily
    /// `expire --keep-full 3 --keep-days 7`. After each simulated day every listed set restores
    /// to the digest recorded when its last backup was taken, and `status --max-age 2h`
    /// answers OK right after a backup and TOO OLD three hours later.
    @Test func simulatedMonthOfCron() throws {
        let e = try Env()
        let days = rounds(short: 6, long: 31)
        let step = rounds(short: 6, long: 1)
        var digestOf: [String: String] = [:]
        let start = SetLabel("20261101T000000Z-full")!.seconds
        for day in 0..<days {
            for hour in stride(from: 0, to: 24, by: step) {
                let t = start + Int64(day * 86400 + hour * 3600)
                e.now = WallClockFormat.rfc3339(t)
                try e.load(30, seed: day * 24 + hour + 1)
                let r = try e.backup(["--incremental", "--full-every", "1d"])
                let label = r["label"] as? String ?? ""
                #expect((r["type"] as? String == "full") == (hour == 0), "day \(day) hour \(hour): \(r)")
                digestOf[label] = try e.digest()
                #expect(try e.run(["status", e.repo, "--max-age", "2h"]).status == 0)
            }
            let endOfDay = start + Int64(day * 86400 + 23 * 3600 + 1800)
            e.now = WallClockFormat.rfc3339(endOfDay)
            try e.run(["expire", e.repo, "--keep-full", "3", "--keep-days", "7"], expect: 0)
            let sets = try e.sets()
            // Seven days back and the set before: at most 9 sets, at least min(day + 1, 3).
            #expect(sets.count >= min(day + 1, 3) && sets.count <= 9, "day \(day): \(sets.count) sets")
            for s in sets {
                let label = s["label"] as? String ?? ""
                #expect(s["state"] as? String == "complete")
                #expect(try e.restoreDigest(label) == digestOf[label], "day \(day): set \(label)")
            }
            let lastBackup = start + Int64(day * 86400 + (24 - step) * 3600)
            e.now = WallClockFormat.rfc3339(lastBackup + 3 * 3600)
            #expect(try e.run(["status", e.repo, "--max-age", "2h"]).status == 1)
        }
    }
}

enum WallClockFormat {
    static func rfc3339(_ seconds: Int64) -> String { Clock.rfc3339(microseconds: UInt64(seconds) * 1_000_000) }
}
