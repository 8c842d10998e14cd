import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The cron options through the built binary, where `RepositoryTests` leaves them untested:
/// `--wait` on the commands that take the instance lock themselves (`config KEY VALUE`,
/// `serve`), a lock whose holder was killed while it surely held it, and `--max-rate` on
/// restore and backup.
@Suite(.serialized) struct LockAndRateTests {
    static func run(_ args: [String], expect: Int32, sourceLocation: SourceLocation = #_sourceLocation) throws -> Binary.Result {
        let r = try Binary.run(args)
        #expect(r.status == expect, "\(args.joined(separator: " ")): \(r.stdout) \(r.stderr)", sourceLocation: sourceLocation)
        return r
    }

    /// Waits until the first line of the lock file at `path` is `pid`: that process holds it.
    static func waitUntilHeld(_ path: String, by pid: Int32, seconds: Double = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").first.map(String.init) == String(pid) { return true }
            usleep(5_000)
        }
        return false
    }

    @Test func configChangeAndServeWaitForTheInstanceLock() throws {
        let t = Temp()
        let i = t.path("db")
        _ = try Self.run(["init", i], expect: 0)
        var held = try PosixFileSystem().lock(i + "/" + FileNames.lock, owner: "test holder")
        let busy = try Self.run(["config", "checkpoint-depth", "2MiB", "-i", i], expect: 75)
        #expect(busy.stderr.contains("test holder"))
        let out = try Self.run(["config", "checkpoint-depth", "2MiB", "-i", i, "--wait", "1s"], expect: 75)
        #expect(out.stderr.contains("waited 1 s"))
        let release = held
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { release.release() }
        let t0 = Date()
        _ = try Self.run(["config", "checkpoint-depth", "2MiB", "-i", i, "--wait", "10s"], expect: 0)
        #expect(Date().timeIntervalSince(t0) >= 0.4)
        #expect(try Self.run(["config", "checkpoint-depth", "-i", i], expect: 0).stdout.contains("2097152"))

        held = try PosixFileSystem().lock(i + "/" + FileNames.lock, owner: "test holder")
        _ = try Self.run(["serve", "-i", i], expect: 75)
        let again = held
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { again.release() }
        let pipe = Pipe()
        let p = try Binary.start(["serve", "-i", i, "--wait", "10s"], stdout: pipe)
        let line = pipe.fileHandleForReading.availableLine(timeout: 15)
        #expect(line?.hasPrefix("serving \(i)") == true, "\(line ?? "nothing")")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }

    /// SIGTERM (or SIGINT) while a command waits for a lock with `--wait` ends the wait at
    /// once: JET_errTermInProgress (75), nothing done. `serve --wait` used to sleep through it
    /// until the lock came free, then serve.
    @Test func aSignalEndsTheWaitForALock() throws {
        let t = Temp()
        let i = t.path("db"), d = t.path("set")
        _ = try Self.run(["init", i], expect: 0)
        _ = try Self.run(["load", "app", "--records", "2000", "-i", i], expect: 0)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false)
        let held = try PosixFileSystem().lock(i + "/" + FileNames.lock, owner: "test holder")
        defer { held.release() }
        for (args, sig) in [(["serve", "-i", i, "--wait", "60s"], SIGTERM), (["backup", d, "--wait", "60s", "-i", i], SIGINT)] {
            let err = Pipe()
            let p = try Binary.start(args, stderr: err)
            usleep(400_000) // inside the wait: the lock is refused at once, the first pause is 50 ms
            let t0 = Date()
            kill(p.processIdentifier, sig)
            p.waitUntilExit()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(p.terminationStatus == 75, "\(args[0]): \(text)")
            #expect(text.contains("JET_errTermInProgress") && text.contains("waiting"), "\(args[0]): \(text)")
            #expect(Date().timeIntervalSince(t0) < 5, "\(args[0]) took \(Date().timeIntervalSince(t0)) s to stop")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: d).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: ControlSocket.path(instance: i)))
    }

    /// Cron runs overlapping under a `serve` owner: a backup while the owner serves another
    /// one, and an incremental into the directory a running full writes, wait with `--wait`
    /// (75 at once without it, nothing written) and then succeed.
    @Test func backupsThroughTheOwnerWaitForItsSessionAndTheirDirectory() throws {
        let t = Temp()
        let i = t.path("db"), one = t.path("one"), two = t.path("two"), three = t.path("three")
        _ = try Self.run(["init", i, "--log-file-size", "1MiB"], expect: 0)
        _ = try Self.run(["load", "app", "--records", "20000", "-i", i], expect: 0)
        for d in [one, two, three] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false) }
        let pipe = Pipe()
        let server = try Binary.start(["serve", "-i", i], stdout: pipe)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        #expect(pipe.fileHandleForReading.availableLine(timeout: 15)?.hasPrefix("serving") == true)
        // A slow full into ONE holds the owner's backup session for about 2 s: a full into TWO
        // is refused at once, or waits for the session.
        var slow = try Binary.start(["backup", one, "--max-rate", "2MiB", "-i", i])
        #expect(Self.waitUntilHeld(one + "/" + BackupSetLayout.lock, by: slow.processIdentifier))
        let busy = try Self.run(["backup", two, "-i", i], expect: 75)
        #expect(busy.stderr.contains("JET_errBackupInProgress"), "\(busy.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: two).isEmpty)
        _ = try Self.run(["backup", two, "--wait", "60s", "-i", i], expect: 0)
        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0)
        // A slow full into THREE holds THREE: the incremental that extends it waits for it.
        slow = try Binary.start(["backup", three, "--max-rate", "2MiB", "-i", i])
        #expect(Self.waitUntilHeld(three + "/" + BackupSetLayout.lock, by: slow.processIdentifier))
        #expect(try Self.run(["backup", three, "--incremental", "-i", i], expect: 75).stderr.contains("JET_errBackupInProgress"))
        _ = try Self.run(["backup", three, "--incremental", "--wait", "60s", "-i", i], expect: 0)
        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0)
        let shown = json(try Self.run(["show", three, "--json"], expect: 0).stdout)
        #expect((shown["chain"] as? [Any])?.count == 2, "\(shown)")
        for d in [one, two, three] { _ = try Self.run(["verify", d], expect: 0) }
    }

    /// flock: a holder killed with -9 lets go of the instance's and the repository's lock, and
    /// the next run neither waits nor fails — checked with holders that had the lock for sure.
    @Test func aLockWhoseHolderWasKilledNeverBlocks() throws {
        let t = Temp()
        let i = t.path("db"), repo = t.path("repo")
        _ = try Self.run(["init", i, "--log-file-size", "1MiB"], expect: 0)
        _ = try Self.run(["repo", "init", repo], expect: 0)
        _ = try Self.run(["load", "app", "--records", "20000", "-i", i], expect: 0)
        // The instance lock: `serve` holds it from before it prints its line.
        let pipe = Pipe()
        let server = try Binary.start(["serve", "-i", i], stdout: pipe)
        #expect(pipe.fileHandleForReading.availableLine(timeout: 15)?.hasPrefix("serving") == true)
        #expect(Self.waitUntilHeld(i + "/" + FileNames.lock, by: server.processIdentifier))
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        var t0 = Date()
        _ = try Self.run(["get", "app", "nothing", "-i", i], expect: 1)
        #expect(Date().timeIntervalSince(t0) < 3)
        // The repository lock: a backup slowed to a crawl holds it while it writes.
        let backup = try Binary.start(["backup", "--repo", repo, "--max-rate", "256KiB", "-i", i])
        #expect(Self.waitUntilHeld(repo + "/" + Repository.lockName, by: backup.processIdentifier))
        kill(backup.processIdentifier, SIGKILL)
        backup.waitUntilExit()
        t0 = Date()
        let x = try Self.run(["expire", repo, "--keep-full", "1"], expect: 0)
        #expect(Date().timeIntervalSince(t0) < 3, "\(x.stdout)")
        _ = try Self.run(["backup", "--repo", repo, "--incremental", "-i", i], expect: 0)
        #expect((json(try Self.run(["list", repo, "--json"], expect: 0).stdout)["sets"] as? [[String: Any]])?.count == 1)
    }

    /// `--max-rate` holds restore (bytes read from the set) and backup (bytes copied) to the
    /// rate: about 2 s of data takes about 2 s, not the fraction of a second it takes unthrottled.
    @Test func restoreAndBackupKeepToTheMaxRate() throws {
        let t = Temp()
        let i = t.path("db"), repo = t.path("repo")
        _ = try Self.run(["init", i, "--log-file-size", "1MiB"], expect: 0)
        _ = try Self.run(["repo", "init", repo], expect: 0)
        _ = try Self.run(["load", "app", "--records", "20000", "-i", i], expect: 0)
        let first = json(try Self.run(["backup", "--repo", repo, "--json", "-i", i], expect: 0).stdout)
        let stored = try #require(first["bytesStored"] as? Int)
        // Restore: the set's bytes at half of them a second.
        var rate = stored / 2
        var t0 = Date()
        _ = try Self.run(["restore", "--repo", repo, "--to", t.path("r"), "--max-rate", String(rate)], expect: 0)
        var took = Date().timeIntervalSince(t0)
        #expect(took >= 1.8 && took <= 2.2 + 1, "restore: \(took) s for \(stored) bytes at \(rate)/s")
        // Backup: the bytes it copies (images and logs before compression), about the first's.
        rate = try #require(first["bytesRead"] as? Int) / 2
        t0 = Date()
        let second = json(try Self.run(["backup", "--repo", repo, "--json", "--max-rate", String(rate), "-i", i], expect: 0).stdout)
        took = Date().timeIntervalSince(t0)
        let read = try #require(second["bytesRead"] as? Int)
        let expected = Double(read) / Double(rate)
        #expect(expected > 1.5, "\(read) bytes: too little to measure a rate")
        #expect(took >= expected * 0.95 && took <= expected * 1.1 + 1, "backup: \(took) s for \(read) bytes at \(rate)/s")
    }
}

extension FileHandle {
    /// The first line written to this pipe within `timeout` seconds (nil: none).
    func availableLine(timeout: Double) -> String? {
        let box = LineBox()
        DispatchQueue.global().async {
            var data = Data()
            while true {
                let chunk = self.availableData
                if chunk.isEmpty { break }
                data.append(chunk)
                if let nl = data.firstIndex(of: 0x0A) {
                    box.set(String(decoding: data[..<nl], as: UTF8.self))
                    return
                }
            }
            box.set(nil)
        }
        return box.wait(timeout: timeout)
    }
}

private final class LineBox: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var line: String?
    func set(_ l: String?) { line = l; done.signal() }
    func wait(timeout: Double) -> String? { done.wait(timeout: .now() + timeout) == .success ? line : nil }
}
