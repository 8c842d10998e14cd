import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// `restore --until TIME` through the built binary: commits are acknowledged with their times
/// by `load --progress commit-times`, in phases with pauses and backups between them; a
/// restore to a time holds exactly the commits acknowledged at or before it, and a time the
/// set cannot be restored to is refused before TARGET is touched.
@Suite(.serialized) struct PointInTimeTests {
    /// One `load` run: its record sequence and, for each commit, the records written so far and
    /// the commit's time as printed.
    struct Phase {
        let gen: LoadGenerator
        let commits: [(records: Int, time: UInt64)]
    }

    final class Env {
        let t = Temp()
        var inst: String { t.path("db") }
        var repo: String { t.path("repo") }
        var phases: [Phase] = []

        init() throws {
            try run(["init", inst, "--log-file-size", "64KiB"], expect: 0)
            try run(["db", "create", "app", "-i", inst], expect: 0)
            try run(["repo", "init", repo], expect: 0)
        }

        @discardableResult
        func run(_ args: [String], expect: Int32? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> Binary.Result {
            let r = try Binary.run(args)
            if let expect {
                #expect(r.status == expect, "\(args.joined(separator: " ")): \(r.stdout) \(r.stderr)", sourceLocation: sourceLocation)
            }
            return r
        }

        /// 300 records of 200 bytes in commits of 50 (about a 64 KiB generation a phase).
        func load(seed: UInt64) throws -> Phase {
            let r = try run(["load", "app", "--records", "300", "--batch", "50", "--value-size", "200", "--seed", String(seed),
                             "--progress", "commit-times", "-i", inst], expect: 0)
            var commits: [(records: Int, time: UInt64)] = []
            for line in r.stdout.split(separator: "\n") where line.hasPrefix("committed ") {
                let f = line.split(separator: " ")
                if f.count == 3, let n = Int(f[1]), let time = RFC3339.microseconds(String(f[2])) { commits.append((n, time)) }
            }
            #expect(commits.map(\.records) == [50, 100, 150, 200, 250, 300], "\(r.stdout)")
            let p = Phase(gen: LoadGenerator(seed: seed, valueSize: 200, updateRatio: 0), commits: commits)
            phases.append(p)
            return p
        }

        /// The digest of the content after exactly the commits acknowledged at or before `time`.
        func expectedDigest(at time: UInt64) -> String {
            var content: [[UInt8]: [UInt8]] = [:]
            for p in phases {
                let n = p.commits.last { $0.time <= time }?.records ?? 0
                content.merge(p.gen.expectedContent(count: n)) { _, new in new }
            }
            return ContentDigest.of(["app": content])
        }

        func digest(_ i: String) throws -> String {
            json(try run(["digest", "app", "--json", "-i", i], expect: 0).stdout)["digest"] as? String ?? "?"
        }

        /// Restores to `until` (as typed) and returns the restore's JSON and the restored digest.
        func restore(_ source: [String], until: String) throws -> ([String: Any], String) {
            let target = t.path("r-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(atPath: target) }
            let r = try run(["restore"] + source + ["--to", target, "--until", until, "--json"], expect: 0)
            try run(["check", "-i", target], expect: 0)
            return (json(r.stdout), try digest(target))
        }
    }

    /// Formats a time with a +02:00 offset and nanoseconds (the digits past the microsecond
    /// dropped by the parser): another spelling of the same instant.
    static func withOffset(_ us: UInt64) -> String {
        let shifted = Clock.rfc3339(microseconds: us + 2 * 3_600_000_000, fractionDigits: 6)
        return String(shifted.dropLast()) + "999+02:00"
    }

    @Test func restoreUntilATimeHoldsExactlyTheCommitsAcknowledgedAtOrBeforeIt() throws {
        let e = try Env()
        let a = try e.load(seed: 1)
        try e.run(["backup", "--repo", e.repo, "-i", e.inst], expect: 0)
        usleep(30_000)
        let b = try e.load(seed: 2)
        try e.run(["backup", "--repo", e.repo, "--incremental", "-i", e.inst], expect: 0)
        usleep(30_000)
        let c = try e.load(seed: 3)
        try e.run(["backup", "--repo", e.repo, "--incremental", "-i", e.inst], expect: 0)
        let show = json(try e.run(["show", "--repo", e.repo, "--json"], expect: 0).stdout)
        let consistent = try #require(RFC3339.microseconds(show["consistentTime"] as? String ?? ""), "\(show)")
        let end = try #require(RFC3339.microseconds(show["lastCommitTime"] as? String ?? ""), "\(show)")
        // The full backup holds all of A and none of B; the set ends with C's last commit.
        #expect(consistent >= a.commits[5].time && consistent < b.commits[0].time)
        #expect(end == c.commits[5].time)
        let listed = (json(try e.run(["list", e.repo, "--json"], expect: 0).stdout)["sets"] as? [[String: Any]])?.first
        #expect(listed?["consistentTime"] as? String == show["consistentTime"] as? String)
        #expect(listed?["lastCommitTime"] as? String == show["lastCommitTime"] as? String)
        let repo = ["--repo", e.repo]

        // At a commit's own time: that commit is in, the next is not.
        let atB2 = b.commits[2].time
        var (r, d) = try e.restore(repo, until: BackupManifest.time(atB2))
        #expect(d == e.expectedDigest(at: atB2) && d != e.expectedDigest(at: b.commits[3].time))
        #expect(r["lastCommitTime"] as? String == BackupManifest.time(atB2), "\(r)")
        #expect(r["stoppedAt"] is String)
        // Just before the next commit, spelled with an offset and nanoseconds.
        if b.commits[3].time > atB2 + 1 {
            (_, d) = try e.restore(repo, until: Self.withOffset(b.commits[3].time - 1))
            #expect(d == e.expectedDigest(at: atB2))
        }
        // In the pause between B and C (the incremental between them holds B whole).
        let pause = (b.commits[5].time + c.commits[0].time) / 2
        (_, d) = try e.restore(repo, until: BackupManifest.time(pause))
        #expect(d == e.expectedDigest(at: pause) && d == e.expectedDigest(at: b.commits[5].time))
        // The two ends of what the set can be restored to.
        (_, d) = try e.restore(repo, until: BackupManifest.time(consistent))
        #expect(d == e.expectedDigest(at: a.commits[5].time))
        (r, d) = try e.restore(repo, until: BackupManifest.time(end))
        let live = try e.digest(e.inst)
        #expect(d == e.expectedDigest(at: end) && d == live)
        #expect(r["stoppedAt"] is NSNull)
        // A set directory given as DIR, a commit in the middle of C.
        let label = try #require(listed?["label"] as? String)
        (_, d) = try e.restore([e.repo + "/" + label], until: BackupManifest.time(c.commits[1].time))
        #expect(d == e.expectedDigest(at: c.commits[1].time))
        #expect(Set(e.phases.flatMap(\.commits).map { e.expectedDigest(at: $0.time) }).count == 18)
    }

    @Test func aTimeOutsideTheSetOrNotATimeIsRefusedBeforeTargetIsTouched() throws {
        let e = try Env()
        _ = try e.load(seed: 1)
        let dir = e.t.path("plain")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        try e.run(["backup", dir, "-i", e.inst], expect: 0)
        _ = try e.load(seed: 2)
        try e.run(["backup", dir, "--incremental", "-i", e.inst], expect: 0)
        let show = json(try e.run(["show", dir, "--json"], expect: 0).stdout)
        let consistent = try #require(RFC3339.microseconds(show["consistentTime"] as? String ?? ""))
        let end = try #require(RFC3339.microseconds(show["lastCommitTime"] as? String ?? ""))
        let missing = e.t.path("missing")
        let empty = e.t.path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        let cases: [([String], String)] = [
            (["--until", BackupManifest.time(consistent - 1)], "before the consistent point"),
            (["--until", BackupManifest.time(end + 1)], "after the end"),
            (["--until", "yesterday"], "is not an RFC 3339 time"),
            (["--until", "2026-02-30T00:00:00Z"], "is not an RFC 3339 time"),
            (["--until", "2026-11-25 03:36:00Z"], "is not an RFC 3339 time"),
            (["--until", "2026-11-25T03:36:00"], "is not an RFC 3339 time"),
        ]
        for (extra, why) in cases {
            for target in [missing, empty] {
                let r = try e.run(["restore", dir, "--to", target] + extra, expect: 64)
                #expect(r.stderr.contains("JET_errInvalidParameter (-1003)") && r.stderr.contains(why), "\(extra): \(r.stderr)")
                let j = try e.run(["restore", dir, "--to", target, "--json"] + extra, expect: 64)
                #expect(json(j.stdout)["error"] as? String == "JET_errInvalidParameter", "\(j.stdout)")
                #expect(!FileManager.default.fileExists(atPath: missing))
                #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty)
            }
        }
        let both = try e.run(["restore", dir, "--to", missing, "--until", BackupManifest.time(end), "--until-generation", "3"], expect: 64)
        #expect(both.stderr.contains("not both"))
        #expect(!FileManager.default.fileExists(atPath: missing))
    }
}
