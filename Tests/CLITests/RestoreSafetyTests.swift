import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// `restore`, `verify` and `show` through the built binary: two restores into one TARGET,
/// signals during a restore, a TARGET that cannot be written, a set that lost its manifest.
@Suite struct RestoreSafetyTests {
    static func digest(_ instance: String) throws -> String {
        String(try Binary.run(["digest", "-i", instance]).stdout.split(separator: " ").first ?? "")
    }

    /// An instance, a full set of it and its digest.
    static func smallSet(_ t: Temp) throws -> (set: String, digest: String) {
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["load", "app", "--records", "3000", "-i", i])
        let set = t.path("set")
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        let b = try Binary.run(["backup", set, "-i", i])
        #expect(b.status == 0, "\(b.stderr)")
        return (set, try digest(i))
    }

    /// Two restores of one set into one TARGET (missing, or an existing empty directory),
    /// the second started 0-50 ms after the first: exactly one restores, the other is
    /// refused (-506 while the first runs, 73 once it has finished), and the winner's
    /// TARGET is a whole instance with the set's digest.
    @Test func twoRestoresIntoTheSameTarget() throws {
        let t = Temp()
        let (set, truth) = try Self.smallSet(t)
        let n = rounds(short: 8, long: 100)
        var rng = SystemRandomNumberGenerator()
        var bad = 0, inProgress = 0, notEmpty = 0
        for round in 0..<n {
            let target = t.path("t\(round)")
            if round % 4 >= 2 { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false) }
            let errA = Pipe(), errB = Pipe()
            let a = try Binary.start(["restore", set, "--to", target], stderr: errA)
            // Half the rounds within 3 ms: both processes check TARGET at nearly the same time.
            usleep(UInt32.random(in: 0...(round % 2 == 0 ? 3_000 : 50_000), using: &rng))
            let b = try Binary.start(["restore", set, "--to", target], stderr: errB)
            a.waitUntilExit(); b.waitUntilExit()
            let messages = [errA, errB].map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
            let codes = [a.terminationStatus, b.terminationStatus]
            let loser = codes[0] == 0 ? 1 : 0
            var ok = codes.sorted() == [0, 73] || codes.sorted() == [0, 75]
            #expect(ok, "round \(round): exit codes \(codes): \(messages)")
            if ok {
                let refusal = messages[loser]
                if codes[loser] == 75 {
                    inProgress += 1
                    #expect(refusal.contains("JET_errRestoreInProgress"), "round \(round): \(refusal)")
                } else {
                    notEmpty += 1
                    #expect(refusal.contains("JET_errInvalidPath") && refusal.contains("not empty"), "round \(round): \(refusal)")
                }
            }
            let left = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
            #expect(!left.contains(FileNames.restoreMarker), "round \(round): the restore marker was left: \(left)")
            let d = try Self.digest(target)
            #expect(d == truth, "round \(round): the restored instance has digest \(d)")
            ok = ok && !left.contains(FileNames.restoreMarker) && d == truth
            if !ok { bad += 1 }
            try? FileManager.default.removeItem(atPath: target)
        }
        print("two restores into one target: \(n) rounds, \(inProgress) refused while running, \(notEmpty) refused as not empty, \(bad) failures")
    }

    /// SIGTERM or SIGINT at some moment of a restore (image copy, logs, replay): exit 75
    /// with a message, TARGET as it was (absent, or an empty directory), and the next restore
    /// into it succeeds with the set's digest. `--progress json` starts with a begin event.
    @Test func restoreStopsCleanlyOnSigtermAndSigint() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        // A 48 MiB image and 8 MiB of logs to replay: 0.5-1 s of restore (debug build).
        try Binary.run(["load", "app", "--records", "6000", "--value-size", "4000", "--batch", "2000", "-i", i])
        let set = t.path("set")
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", set, "-i", i]).status == 0)
        try Binary.run(["load", "app", "--records", "2000", "--seed", "2", "--value-size", "4000", "-i", i])
        #expect(try Binary.run(["backup", set, "--incremental", "-i", i]).status == 0)
        let truth = try Self.digest(i)
        let n = rounds(short: 4, long: 40)
        var rng = SystemRandomNumberGenerator()
        var interrupted = 0
        for round in 0..<n {
            let signal = round % 2 == 0 ? SIGTERM : SIGINT
            let existing = round % 4 >= 2
            let target = t.path("t\(round)")
            if existing { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false) }
            let err = Pipe()
            let p = try Binary.start(["restore", set, "--to", target, "--progress", "json"], stderr: err)
            // The begin event comes once the handlers are installed and the set was read.
            var seen = Data()
            while !String(decoding: seen, as: UTF8.self).contains("\n") {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen.append(chunk)
            }
            let first = json(String(decoding: seen, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? "")
            #expect(first["event"] as? String == "begin" && first["kind"] as? String == "restore"
                    && (first["totalBytes"] as? Int ?? 0) > 40 << 20, "round \(round): first event \(first)")
            let delay = UInt32.random(in: 0...(round < 4 ? UInt32(120_000 * round) : 600_000), using: &rng)
            usleep(delay)
            kill(p.processIdentifier, signal)
            p.waitUntilExit()
            let stderr = String(decoding: seen + err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let label = "round \(round) (\(signal == SIGTERM ? "SIGTERM" : "SIGINT") after \(delay / 1000) ms, TARGET \(existing ? "empty" : "missing"))"
            #expect(p.terminationReason == .exit, "\(label): killed by the signal")
            if p.terminationStatus == 0 {
                // Finished before the signal (not possible within 100 ms of the begin): a whole restore.
                #expect(delay >= 100_000, "\(label): the signal was ignored")
                #expect(try Self.digest(target) == truth, "\(label)")
                continue
            }
            interrupted += 1
            #expect(p.terminationStatus == 75, "\(label): exit \(p.terminationStatus): \(stderr)")
            #expect(stderr.contains("JET_errTermInProgress") && stderr.contains("interrupted"), "\(label): \(stderr)")
            if existing {
                let left = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? ["(gone)"]
                #expect(left.isEmpty, "\(label): TARGET holds \(left)")
            } else {
                #expect(!FileManager.default.fileExists(atPath: target), "\(label): TARGET was left")
            }
            let again = try Binary.run(["restore", set, "--to", target])
            #expect(again.status == 0, "\(label): the next restore failed: \(again.stderr)")
            // TARGET was found exactly as before, so this restore is any other; one digest suffices.
            if interrupted == 1 { #expect(try Self.digest(target) == truth, "\(label)") }
        }
        #expect(interrupted > 0, "no round was interrupted: the restore is too fast for this test")
        print("signals during restore: \(n) rounds, \(interrupted) interrupted")
    }

    /// kill -9 of a restore at a random moment: TARGET is left marked (refused as an instance,
    /// -506) or whole; the next restore into it removes what the dead one wrote and restores
    /// the set's digest, saying so. A marker a live process holds is still refused, and one
    /// that names no owner yet (a claim between create and lock) too.
    @Test func aRestoreKilledOutrightIsCleanedUpByTheNextOne() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["load", "app", "--records", "6000", "--value-size", "4000", "--batch", "2000", "-i", i])
        let set = t.path("set")
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", set, "-i", i]).status == 0)
        try Binary.run(["load", "app", "--records", "2000", "--seed", "2", "--value-size", "4000", "-i", i])
        #expect(try Binary.run(["backup", set, "--incremental", "-i", i]).status == 0)
        let truth = try Self.digest(i)
        let marker = FileNames.restoreMarker
        let n = rounds(short: 4, long: 40)
        var rng = SystemRandomNumberGenerator()
        var reclaimed = 0
        // Kill moments spread over how long a whole restore takes here (a fixed range missed
        // the restore on a fast machine: every kill came after it had finished).
        let began = Date()
        #expect(try Binary.run(["restore", set, "--to", t.path("timed")]).status == 0)
        let whole = max(0.05, Date().timeIntervalSince(began))
        for round in 0..<n {
            let target = t.path("k\(round)")
            let p = try Binary.start(["restore", set, "--to", target])
            usleep(UInt32(whole * 1e6 * Double.random(in: 0.3...0.9, using: &rng)))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let left = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
            if left.contains(marker) {
                #expect(try Binary.run(["digest", "-i", target]).status == 75, "round \(round): a half restore opened as an instance")
                reclaimed += 1
            }
            let again = try Binary.run(["restore", set, "--to", target, "--json"])
            if left.isEmpty || left.contains(marker) {
                #expect(again.status == 0, "round \(round): the next restore failed (TARGET held \(left)): \(again.stderr)")
                #expect(again.stdout.contains("\"removedInterruptedRestore\":\(left.contains(marker))"), "round \(round): \(again.stdout)")
                #expect(try Self.digest(target) == truth, "round \(round)")
                let after = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
                #expect(!after.contains(marker), "round \(round): the marker was left: \(after)")
            } else {
                // The killed restore had finished: TARGET is whole and not empty.
                #expect(again.status == 73, "round \(round): \(again.stderr)")
                #expect(try Self.digest(target) == truth, "round \(round)")
            }
        }
        #expect(reclaimed > 0, "no round was killed mid-restore: the restore is too fast for this test")

        // A marker held by a live process (its lock taken) is a running restore: refused.
        let live = t.path("live")
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: false)
        let lock = try PosixFileSystem().lock(live + "/" + marker, owner: "a restore that runs")
        FileManager.default.createFile(atPath: live + "/app.edb", contents: Data("half".utf8))
        let refused = try Binary.run(["restore", set, "--to", live])
        #expect(refused.status == 75 && refused.stderr.contains("JET_errRestoreInProgress"), "\(refused.stderr)")
        #expect(FileManager.default.contents(atPath: live + "/app.edb") == Data("half".utf8), "a running restore's file was touched")
        lock.release()
        // Once its holder is gone the same TARGET is taken over.
        let taken = try Binary.run(["restore", set, "--to", live])
        #expect(taken.status == 0 && taken.stdout.contains("interrupted restore"), "\(taken.stderr)")
        #expect(try Self.digest(live) == truth)

        // A marker without an owner record: a restore between creating and locking it.
        let claiming = t.path("claiming")
        try FileManager.default.createDirectory(atPath: claiming, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: claiming + "/" + marker, contents: Data())
        let busy = try Binary.run(["restore", set, "--to", claiming])
        #expect(busy.status == 75 && busy.stderr.contains("JET_errRestoreInProgress"), "\(busy.stderr)")
        print("kill -9 during restore: \(n) rounds, \(reclaimed) left TARGET marked and were cleaned up by the next restore")
    }

    /// A TARGET this user cannot write (or whose parent it cannot write) is a bad
    /// destination, 73, naming TARGET and "permission denied" — not an I/O error. Runs the
    /// binary as nobody (root ignores permission bits).
    @Test func unwritableTargetIsABadDestination() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            print("unwritableTargetIsABadDestination: skipped (needs root and setpriv to run the binary as nobody)")
            return
        }
        let t = Temp()
        let (set, _) = try Self.smallSet(t)
        chmod(t.root, 0o755)
        for f in [set] + ((try? FileManager.default.contentsOfDirectory(atPath: set)) ?? []).map({ set + "/" + $0 }) {
            chown(f, 65534, 65534)
        }
        let empty = t.path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: false)
        chmod(empty, 0o755)
        for target in [t.path("missing"), empty] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Binary.path, "restore", set, "--to", target]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 73, "\(target): exit \(p.terminationStatus): \(message)")
            #expect(message.contains("JET_errInvalidPath") && message.contains(target) && message.contains("permission denied"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("missing")))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: empty)) ?? ["x"]).isEmpty)
    }

    /// A set directory whose MANIFEST.json was deleted: verify, show and restore report a
    /// damaged set (65), naming the missing manifest.
    @Test func setWithoutManifestIsDamagedForEveryCommand() throws {
        let t = Temp()
        let (set, _) = try Self.smallSet(t)
        try FileManager.default.removeItem(atPath: set + "/" + BackupSetLayout.manifest)
        for args in [["verify", set], ["show", set], ["restore", set, "--to", t.path("r")]] {
            let r = try Binary.run(args)
            #expect(r.status == 65, "\(args[0]): exit \(r.status): \(r.stderr)")
            #expect(r.stderr.contains("JET_errDatabaseCorrupted") && r.stderr.contains("MANIFEST.json"), "\(args[0]): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("r")))
    }
}
