import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// kill -9 from outside, at random moments. Short in `make test`, long in `make stress`.
@Suite(.serialized) struct StressTests {
    /// `load` reports each commit as it returns; it is killed at random; afterwards the
    /// content equals the deterministic sequence cut at a commit boundary at or after the
    /// last reported commit — never a partial commit.
    @Test func killDashNineDuringLoad() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["config", "checkpoint-depth", "256KiB", "-i", i])
        let batch = 50, total = 100_000
        let gen = LoadGenerator(seed: 42, valueSize: 80, updateRatio: 0.3)
        var rng = SystemRandomNumberGenerator()
        let n = rounds(short: 20, long: 200)
        var failures = 0
        for round in 0..<n {
            // Each round continues the same sequence from where the instance is.
            let out = Pipe()
            let p = try Binary.start(["load", "app", "--records", String(total), "--batch", String(batch), "--seed", "42",
                                      "--value-size", "80", "--update-ratio", "0.3", "--progress", "commits", "-i", i], stdout: out)
            usleep(UInt32.random(in: 20_000...250_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let reported = text.split(separator: "\n").compactMap { Int($0.split(separator: " ").last ?? "") }.last ?? 0
            let r = try Binary.run(["digest", "app", "--json", "-i", i])
            let got = json(r.stdout)["digest"] as? String
            // Which prefix is it? At least what was reported, at most a few commits more.
            var matched: Int?
            // Killed before the database was created (nothing reported): nothing to find.
            if reported == 0 && r.status == 66 && r.stderr.contains("JET_errDatabaseNotFound") { matched = 0 }
            var m = reported
            while matched == nil && m <= min(total, reported + 10 * batch) {
                if ContentDigest.of(["app": gen.expectedContent(count: m)]) == got { matched = m; break }
                m += batch
            }
            if matched == nil {
                failures += 1
                // Diagnose: any commit boundary at all? (below the report means lost commits)
                var any: Int?
                var k = 0
                while k <= min(total, reported + 40 * batch) {
                    if ContentDigest.of(["app": gen.expectedContent(count: k)]) == got { any = k; break }
                    k += batch
                }
                let records = json(r.stdout)["records"] as? Int ?? -1
                print("round \(round): reported \(reported), digest matches prefix \(any.map(String.init) ?? "none"), records \(records), status \(r.status) \(r.stderr)")
                try? FileManager.default.copyItem(atPath: i, toPath: "/tmp/failed-load-\(round)-\(getpid())")
            }
            #expect(matched != nil, "round \(round): content is not the sequence cut at a commit boundary ≥ \(reported)")
            // Start over for the next round: the sequence must begin at record 0.
            try? FileManager.default.removeItem(atPath: i)
            try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
            try Binary.run(["config", "checkpoint-depth", "256KiB", "-i", i])
        }
        print("kill -9 during load: \(n) rounds, \(failures) failures")
    }

    /// `backup` killed at random moments (full, incremental, atomic): DIR holds the
    /// complete previous state or the complete new set, no needed log was deleted, and the
    /// next backup succeeds.
    @Test func killDashNineDuringBackup() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "128KiB"])
        try Binary.run(["load", "app", "--records", "60000", "--value-size", "200", "-i", i])
        let atomic = t.path("atomic")
        try FileManager.default.createDirectory(atPath: atomic, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", atomic, "--atomic", "-i", i]).status == 0)
        var rng = SystemRandomNumberGenerator()
        let n = rounds(short: 10, long: 100)
        var killed = 0
        for round in 0..<n {
            try Binary.run(["load", "app", "--records", "2000", "--seed", String(round + 10), "-i", i])
            let kind = round % 3
            let full = t.path("full\(round)")
            if kind == 0 { try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: false) }
            let inc = t.path("inc\(round)")
            if kind == 2 {
                // An incremental extends the last full backup: take one into a fresh set first.
                try FileManager.default.createDirectory(atPath: inc, withIntermediateDirectories: false)
                #expect(try Binary.run(["backup", inc, "-i", i]).status == 0)
                try Binary.run(["load", "app", "--records", "3000", "--seed", String(round + 1000), "-i", i])
            }
            let args: [String] = kind == 0 ? ["backup", full] : kind == 1 ? ["backup", atomic, "--atomic", "--compress-logs"] : ["backup", inc, "--incremental"]
            let p = try Binary.start(args + ["-i", i])
            usleep(UInt32.random(in: 0...120_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { killed += 1 }
            switch kind {
            case 0:
                // Either a complete set that verifies, or nothing taken for a set.
                let v = try Binary.run(["verify", full])
                #expect(v.status == 0 || v.stderr.contains("no backup set") || v.stderr.contains("leftovers"), "round \(round): \(v.stderr)")
            default:
                let v = try Binary.run(["verify", kind == 1 ? atomic : inc])
                #expect(v.status == 0, "round \(round): the previous set does not verify: \(v.stderr)")
            }
            // The next backup of the same kind succeeds (cleaning leftovers), and restores.
            if kind == 0 { try? FileManager.default.removeItem(atPath: full); try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: false) }
            var r = try Binary.run(args + ["-i", i])
            #expect(r.status == 0, "round \(round) \(args): \(r.stderr)")
            let target = t.path("r\(round)")
            r = try Binary.run(["restore", kind == 0 ? full : kind == 1 ? atomic : inc, "--to", target])
            #expect(r.status == 0, "round \(round): \(r.stderr)")
            let a = try Binary.run(["digest", "-i", i]).stdout.split(separator: " ").first
            let b = try Binary.run(["digest", "-i", target]).stdout.split(separator: " ").first
            #expect(a == b, "round \(round): restored digest differs")
            try? FileManager.default.removeItem(atPath: target)
            if kind == 0 { try? FileManager.default.removeItem(atPath: full) }
        }
        print("kill -9 during backup: \(n) rounds, \(killed) killed mid-run")
    }

    /// Two backups started together: exactly one backs up, the other exits 75.
    @Test func twoBackupsAtOnce() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        // Large enough that one backup is still running when the other starts (with format 4
        // a backup of 20,000 records could finish before the second process opened the instance).
        try Binary.run(["load", "app", "--records", "150000", "-i", i])
        let n = rounds(short: 10, long: 100)
        var bad = 0
        for round in 0..<n {
            let a = t.path("a\(round)"), b = t.path("b\(round)")
            for d in [a, b] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false) }
            let pa = try Binary.start(["backup", a, "-i", i]), pb = try Binary.start(["backup", b, "-i", i])
            pa.waitUntilExit(); pb.waitUntilExit()
            let codes = [pa.terminationStatus, pb.terminationStatus].sorted()
            #expect(codes == [0, 75], "round \(round): exit codes \(codes)")
            let winner = pa.terminationStatus == 0 ? a : b, loser = pa.terminationStatus == 0 ? b : a
            let verified = try Binary.run(["verify", winner]).status == 0
            let loserEmpty = ((try? FileManager.default.contentsOfDirectory(atPath: loser)) ?? ["x"]).isEmpty
            #expect(verified)
            #expect(loserEmpty)
            if codes != [0, 75] || !verified || !loserEmpty { bad += 1 }
        }
        print("two backups at once: \(n) rounds, \(bad) failures")
    }

    /// What a refused backup must leave alone: the headers' backup slots and the instance's
    /// log generations (a refused run records nothing and truncates nothing).
    static func backupRecord(_ i: String) throws -> String {
        let info = json(try Binary.run(["info", "--json", "-i", i]).stdout)
        func canonical(_ v: Any?) -> String {
            guard let v, let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed]) else { return "-" }
            return String(decoding: d, as: UTF8.self)
        }
        let dbs = (info["databases"] as? [[String: Any]] ?? []).map { "\($0["name"] ?? "") \(canonical($0["fullPrev"])) \(canonical($0["incPrev"]))" }
        let logs = json(try Binary.run(["logs", "--json", "-i", i]).stdout)
        let gens = (logs["generations"] as? [[String: Any]] ?? []).map { "\($0["generation"] ?? "")" }
        return dbs.joined(separator: "; ") + " | " + gens.joined(separator: ",")
    }

    /// Two instances backing up into one directory, started 0-50 ms apart in either order.
    /// Full and atomic: exactly one backs up; the other is refused (75 while the first holds
    /// the directory, 73 once it holds a set), records nothing and truncates nothing, and the
    /// set restores to the winner's content. Incremental (into the first instance's set): the
    /// second instance never succeeds; the first succeeds or, if refused, changes nothing.
    @Test(arguments: ["full", "atomic", "incremental"])
    func twoInstancesIntoOneDirectory(kind: String) throws {
        let t = Temp()
        let inst = [t.path("i1"), t.path("i2")]
        for (k, i) in inst.enumerated() {
            try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
            try Binary.run(["load", "app", "--records", "4000", "--seed", String(k + 1), "-i", i])
        }
        if kind == "incremental" {
            // The second instance has a full backup of its own: its refusal must come from S.
            try FileManager.default.createDirectory(atPath: t.path("own"), withIntermediateDirectories: false)
            #expect(try Binary.run(["backup", t.path("own"), "-i", inst[1]]).status == 0)
        }
        var rng = SystemRandomNumberGenerator()
        let n = rounds(short: 3, long: 30)
        var bad = 0, firstWon = [0, 0], refusals: [Int32: Int] = [:]
        for round in 0..<n {
            let s = t.path("s\(round)")
            try FileManager.default.createDirectory(atPath: s, withIntermediateDirectories: false)
            // Incremental: if both are refused, the set still holds the full backup's content.
            var atFull = ""
            if kind == "incremental" {
                #expect(try Binary.run(["backup", s, "-i", inst[0]]).status == 0)
                atFull = try Binary.run(["digest", "-i", inst[0]]).stdout
                for (k, i) in inst.enumerated() {
                    try Binary.run(["load", "app", "--records", "1500", "--seed", String(100 * round + k), "-i", i])
                }
            }
            let records = try inst.map(Self.backupRecord)
            let digests = try inst.map { try Binary.run(["digest", "-i", $0]).stdout }
            let args: [String] = kind == "full" ? ["backup", s] : kind == "atomic" ? ["backup", s, "--atomic"] : ["backup", s, "--incremental"]
            let order = Bool.random(using: &rng) ? [0, 1] : [1, 0]
            var procs: [Int: (Process, Pipe)] = [:]
            for (j, k) in order.enumerated() {
                if j == 1 { usleep(UInt32.random(in: 0...50_000, using: &rng)) }
                let err = Pipe()
                procs[k] = (try Binary.start(args + ["-i", inst[k]], stderr: err), err)
            }
            var codes: [Int32] = [0, 0], errs = ["", ""]
            for k in 0..<2 {
                let (p, err) = procs[k]!
                errs[k] = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                p.waitUntilExit()
                codes[k] = p.terminationStatus
            }
            var ok = true
            let winners = (0..<2).filter { codes[$0] == 0 }
            if kind == "incremental" {
                ok = ok && [75, 78].contains(codes[1]) && [0, 75].contains(codes[0])
            } else {
                ok = ok && winners.count == 1 && codes.allSatisfy { [0, 73, 75].contains($0) }
            }
            for k in 0..<2 where codes[k] != 0 {
                refusals[codes[k], default: 0] += 1
                let after = try Self.backupRecord(inst[k])
                #expect(after == records[k], "round \(round) \(kind): refused instance \(k + 1) changed: \(records[k]) -> \(after)")
                ok = ok && after == records[k]
            }
            #expect(try Binary.run(["verify", s]).status == 0, "round \(round) \(kind): the set does not verify")
            let target = t.path("r\(round)")
            #expect(try Binary.run(["restore", s, "--to", target]).status == 0)
            let restored = try Binary.run(["digest", "-i", target]).stdout
            let want = winners.first.map { digests[$0] } ?? atFull
            #expect(restored == want, "round \(round) \(kind): the set restores to the wrong content (winners \(winners))")
            ok = ok && restored == want
            if let w = winners.first { firstWon[w == order[0] ? 0 : 1] += 1 }
            #expect(ok, "round \(round) \(kind): exit codes \(codes), stderr \(errs)")
            if !ok { bad += 1 }
            try? FileManager.default.removeItem(atPath: target)
        }
        print("two instances into one directory (\(kind)): \(n) rounds, \(bad) failures, won by the first started \(firstWon[0]), by the second \(firstWon[1]), refusals by exit status \(refusals.sorted { $0.key < $1.key })")
    }

    /// SIGTERM during a backup: event 215, exit 75, nothing kept.
    @Test func sigtermAbortsCleanly() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i, "--page-size", "4KiB"])
        // Many log generations to copy at zstd level 19: the backup runs for a while.
        try Binary.run(["load", "app", "--records", "120000", "--value-size", "500", "--batch", "5000", "-i", i])
        let d = t.path("d")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false)
        let err = Pipe()
        let p = try Binary.start(["backup", d, "--compress-logs=19", "--progress", "json", "-i", i], stderr: err)
        // Wait for the first progress event: the handler is installed and the copy has begun.
        var seen = Data()
        while !String(decoding: seen, as: UTF8.self).contains("\"progress\"") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 75)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? ["x"]).isEmpty)
        let ev = try Binary.run(["events", "--limit", "5", "-i", i]).stdout
        #expect(ev.contains("\"id\":215"))
        let info = try Binary.run(["info", "--json", "-i", i]).stdout
        #expect(info.contains("\"fullPrev\":null"))
    }
}
