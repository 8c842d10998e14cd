import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Repositories and backup directories in object storage through the built binary, against a
/// real SeaweedFS server (started by the tests, killed at the end even on failure): every kind
/// of backup to `s3://` and back, refused credentials and buckets, objects deleted or changed
/// in the bucket, the server killed mid-upload, multipart files, two runs at once. Tests that
/// leave the server as they found it share one; each works under its own prefix.
@Suite(.serialized, .enabled(if: SeaweedFS.available)) struct S3RepositoryTests {
    final class Env {
        let t = Temp()
        /// nil for a test of local repositories only.
        let weedServer: SeaweedFS?
        let prefix = "t-\(UUID().uuidString.prefix(8).lowercased())"
        var extraEnv: [String: String] = [:]
        var inst: String { t.path("db") }
        var repo: String { url("repo") }

        init(weed: SeaweedFS? = nil, s3: Bool = true, instance: Bool = true) throws {
            weedServer = s3 ? try weed ?? SeaweedFS.shared() : nil
            if instance {
                try run(["init", inst, "--log-file-size", "64KiB"], expect: 0)
                try run(["db", "create", "app", "-i", inst], expect: 0)
            }
        }

        var weed: SeaweedFS {
            get throws {
                guard let weedServer else { throw JetErrorForTests("this test has no S3 server") }
                return weedServer
            }
        }

        func url(_ name: String) -> String { "s3://\(weedServer?.bucket ?? "none")/\(prefix)/\(name)" }
        func key(_ name: String) -> String { "\(prefix)/\(name)" }

        var env: [String: String] {
            var e = ["AWS_ACCESS_KEY_ID": SeaweedFS.accessKey, "AWS_SECRET_ACCESS_KEY": SeaweedFS.secretKey,
                     "AWS_ENDPOINT_URL": weedServer?.endpoint ?? "", "AWS_REGION": "us-east-1", "AWS_SESSION_TOKEN": "",
                     "AWS_DEFAULT_REGION": "", "JETBACKUP_S3_ATTEMPTS": "2", "JETBACKUP_KEY_FILE": ""]
            for (k, v) in extraEnv { e[k] = v }
            return e
        }

        @discardableResult
        func run(_ args: [String], expect: Int32? = nil, env more: [String: String] = [:],
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> Binary.Result {
            let r = try Binary.run(args, env: env.merging(more) { $1 })
            if let expect {
                #expect(r.status == expect, "\(args.joined(separator: " ")): \(r.stdout) \(r.stderr)", sourceLocation: sourceLocation)
            }
            return r
        }

        /// Starts the binary with this environment, without waiting.
        func start(_ args: [String], stderr: Pipe? = nil) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Binary.path)
            p.arguments = args
            var e = ProcessInfo.processInfo.environment
            e["JETBACKUP_INSTANCE"] = nil
            for (k, v) in env { e[k] = v }
            p.environment = e
            p.standardOutput = FileHandle.nullDevice
            p.standardError = stderr ?? FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            return p
        }

        /// Runs the binary under /usr/bin/time: its output and peak resident memory (nil when
        /// /usr/bin/time is missing; the command still runs). Expects exit 0.
        func peakKiB(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> (stdout: String, kib: Int?) {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/time") else {
                return (try run(args, expect: 0, sourceLocation: sourceLocation).stdout, nil)
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
            p.arguments = ["-f", "peak-rss-kib %M", Binary.path] + args
            var env = ProcessInfo.processInfo.environment
            env["JETBACKUP_INSTANCE"] = nil
            for (k, v) in self.env { env[k] = v }
            p.environment = env
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let r = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "\(args.joined(separator: " ")): \(o) \(r)", sourceLocation: sourceLocation)
            let kib = r.split(separator: "\n").last { $0.hasPrefix("peak-rss-kib ") }.flatMap { Int($0.dropFirst(13)) }
            return (o, kib)
        }

        func load(_ n: Int, seed: Int, instance: String? = nil) throws {
            try run(["load", "app", "--records", String(n), "--seed", String(seed), "--value-size", "200", "-i", instance ?? inst], expect: 0)
        }

        func digest(_ i: String? = nil) throws -> String {
            json(try run(["digest", "app", "--json", "-i", i ?? inst], expect: 0).stdout)["digest"] as? String ?? "?"
        }

        /// Restores (`args` name the set) into a new local TARGET and returns its digest.
        func restoreDigest(_ args: [String]) throws -> String {
            let target = t.path("r-\(UUID().uuidString)")
            try run(["restore"] + args + ["--to", target], expect: 0)
            defer { try? FileManager.default.removeItem(atPath: target) }
            return try digest(target)
        }

        func sets(_ extra: [String] = []) throws -> [[String: Any]] {
            json(try run(["list", repo, "--json"] + extra, expect: 0).stdout)["sets"] as? [[String: Any]] ?? []
        }

        /// Every object key under this test's prefix (relative to it).
        func objects() throws -> [String] {
            try (try weed).client().list(prefix: prefix + "/").map { String($0.key.dropFirst(prefix.count + 1)) }
        }
    }

    @Test func everyBackupKindToS3RestoresToTheSourceDigest() throws {
        let e = try Env()
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(800, seed: 1)
        let full = json(try e.run(["backup", "--repo", e.repo, "--json", "-i", e.inst], expect: 0).stdout)
        #expect(full["type"] as? String == "full")
        let d1 = try e.digest()
        try e.load(400, seed: 2)
        let inc = json(try e.run(["backup", "--repo", e.repo, "--incremental", "--compress-logs", "--json", "-i", e.inst], expect: 0).stdout)
        #expect(inc["type"] as? String == "incremental" && inc["label"] as? String == full["label"] as? String)
        let d2 = try e.digest()
        let label = full["label"] as? String ?? "?"
        // list, verify and show read the set in the bucket.
        let sets = try e.sets()
        #expect(sets.count == 1 && sets.first?["state"] as? String == "complete" && (sets.first?["chain"] as? [Any])?.count == 2)
        try e.run(["verify", "--repo", e.repo], expect: 0)
        #expect(try e.sets().first?["lastVerified"] as? [String: Any] != nil)
        try e.run(["list", e.repo, "--s3-addressing", "path"], expect: 0)
        try e.run(["list", e.repo, "--s3-addressing", "sideways"], expect: 64)
        try e.run(["restore", "--repo", e.repo, "--to", e.url("target")], expect: 64)
        #expect(try e.run(["show", "--repo", e.repo, "--json"], expect: 0).stdout.contains(label))
        #expect(try e.restoreDigest(["--repo", e.repo]) == d2)
        #expect(try e.restoreDigest(["--repo", e.repo, "--until-generation",
                                     String((sets.first?["chain"] as? [[String: Any]])?.first?["genHigh"] as? Int ?? 0)]) == d1)
        #expect(try e.run(["status", e.repo, "--max-age", "1h"], expect: 0).stdout.hasPrefix("OK"))
        // A plain set directory in the bucket: full, then incremental.
        let plain = e.url("plain")
        try e.run(["backup", plain, "-i", e.inst], expect: 0)
        try e.load(300, seed: 3)
        try e.run(["backup", plain, "--incremental", "-i", e.inst], expect: 0)
        try e.run(["verify", plain], expect: 0)
        #expect(try e.restoreDigest([plain]) == (try e.digest()))
        // No temporary or lock object is left behind.
        let left = try e.objects()
        #expect(!left.contains { $0.hasSuffix(".tmp") || $0.hasSuffix(".jetbackup-lock") || $0.hasSuffix(".jetbackup-incomplete") }, "\(left)")
        #expect(!left.contains { $0.hasSuffix(Repository.lockName) }, "\(left)")
        // An atomic backup needs a rename that object storage does not have: refused before
        // anything is written.
        let r = try e.run(["backup", e.url("atomic"), "--atomic", "-i", e.inst], expect: 64)
        #expect(r.stderr.contains("cannot rename"))
        #expect(try e.objects().allSatisfy { !$0.hasPrefix("atomic") })
        // expire removes whole sets from the bucket, never the newest.
        try e.run(["backup", "--repo", e.repo, "-i", e.inst], expect: 0)
        try e.run(["expire", e.repo, "--keep-full", "1"], expect: 0)
        #expect(try e.sets().count == 1)
        #expect(try e.objects().allSatisfy { !$0.hasPrefix("repo/\(label)") })
    }

    @Test func refusedCredentialsAre77AndAMissingBucketIs73WithNoSecretInAnyOutput() throws {
        let e = try Env()
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(100, seed: 1)
        let wrong = "wrong-secret-value-1234567890"
        for args in [["list", e.repo], ["backup", "--repo", e.repo, "-i", e.inst], ["verify", "--repo", e.repo],
                     ["list", e.repo, "--json"], ["backup", e.url("plain"), "-i", e.inst, "--progress", "json"]] {
            let r = try e.run(args, expect: 77, env: ["AWS_SECRET_ACCESS_KEY": wrong])
            #expect(r.stderr.contains("JET_errPermissionDenied"), "\(r.stderr)")
            for out in [r.stdout, r.stderr] {
                #expect(!out.contains(wrong) && !out.contains(SeaweedFS.secretKey))
            }
        }
        let missing = "s3://no-such-bucket-\(e.prefix)/repo"
        for args in [["list", missing], ["repo", "init", missing], ["backup", "--repo", missing, "-i", e.inst],
                     ["backup", missing, "-i", e.inst], ["verify", missing]] {
            let r = try e.run(args, expect: 73)
            #expect(r.stderr.contains("does not exist"), "\(r.stderr)")
        }
        // A missing credential is refused before any request.
        try e.run(["list", e.repo], expect: 77, env: ["AWS_ACCESS_KEY_ID": ""])
    }

    /// libcurl is loaded when an S3 repository is first used, not linked: without it every
    /// other command works, and an S3 one is refused at once (no retries) saying what to install.
    @Test func withoutLibcurlS3IsRefusedByNameAndTheRestWorks() throws {
        let e = try Env(s3: false)
        let gone = ["JETBACKUP_LIBCURL": "/nonexistent/libcurl.so.4"]
        try e.run(["put", "app", "k", "v", "-i", e.inst], expect: 0, env: gone)
        for args in [["list", "s3://bucket/repo"], ["backup", "s3://bucket/set", "-i", e.inst]] {
            let r = try e.run(args, expect: 66, env: gone)
            #expect(r.stderr.contains("JET_errFileNotFound") && r.stderr.contains("libcurl4"), "\(r.stderr)")
        }
        #expect(try e.run(["get", "app", "k", "-i", e.inst], expect: 0, env: gone).stdout == "v\n")
    }

    @Test func anObjectDeletedOrChangedInTheBucketIsRefusedByVerifyAndRestoreWritingNothing() throws {
        let e = try Env()
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(600, seed: 1)
        let label = json(try e.run(["backup", "--repo", e.repo, "--json", "-i", e.inst], expect: 0).stdout)["label"] as? String ?? "?"
        try e.load(300, seed: 2)
        try e.run(["backup", "--repo", e.repo, "--incremental", "-i", e.inst], expect: 0)
        let c = (try e.weed).client()
        let objects = try e.objects()
        let image = e.key("repo/\(label)/app.edb")
        guard let log = objects.filter({ $0.hasSuffix(".log") }).last.map(e.key) else { Issue.record("no log in \(objects)"); return }
        // With --set: a failed verify marks the set damaged, and only a named set is read then.
        func refused(_ what: String) throws {
            for args in [["verify", "--repo", e.repo, "--set", label], ["restore", "--repo", e.repo, "--set", label, "--to", e.t.path("target")]] {
                let r = try e.run(args)
                #expect(r.status == 65, "\(what): \(args[0]) \(r.status) \(r.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: e.t.path("target")), "\(what): restore left TARGET")
        }
        // One byte changed in the image.
        let original = try c.get(image)
        var changed = original
        changed[changed.count / 2] ^= 0x40
        try c.put(image, changed)
        try refused("a changed image byte")
        try c.put(image, original)
        try e.run(["verify", "--repo", e.repo, "--set", label], expect: 0)
        // A log generation deleted.
        let logBytes = try c.get(log)
        try c.delete(log)
        try refused("a deleted log")
        try c.put(log, logBytes)
        try e.run(["verify", "--repo", e.repo, "--set", label], expect: 0)
        // The manifest deleted: the set's objects are no set, listed as damaged, never restored.
        let manifest = e.key("repo/\(label)/\(BackupSetLayout.manifest)")
        let m = try c.get(manifest)
        try c.delete(manifest)
        #expect(try e.sets().first?["state"] as? String == "damaged")
        try e.run(["restore", "--repo", e.repo, "--to", e.t.path("target")], expect: 78)
        #expect(!FileManager.default.fileExists(atPath: e.t.path("target")))
        try c.put(manifest, m)
        #expect(try e.restoreDigest(["--repo", e.repo]) == (try e.digest()))
    }

    /// An image of thirteen 5 MiB parts goes up as a multipart upload, streamed: the backup's
    /// peak memory stays well under the image's size above a local backup's (it would hold the
    /// whole image if it staged it), and the set verifies and restores.
    @Test func aFileLargerThanSeveralPartsGoesUpInPartsWithBoundedMemoryAndComesBackWhole() throws {
        let e = try Env(instance: false)
        try e.run(["init", e.inst, "--log-file-size", "1MiB"], expect: 0)
        try e.run(["load", "app", "--records", "8192", "--value-size", "8000", "--batch", "200", "-i", e.inst], expect: 0)
        try e.run(["backup", "-i", e.inst], expect: 0)
        // S3's (and SeaweedFS's) smallest part but the last is 5 MiB.
        e.extraEnv["JETBACKUP_S3_PART_SIZE"] = "5MiB"
        let local = e.t.path("local")
        try e.run(["repo", "init", local], expect: 0)
        try e.run(["repo", "init", e.repo], expect: 0)
        let localRSS = try e.peakKiB(["backup", "--repo", local, "-i", e.inst])
        let remote = try e.peakKiB(["backup", "--repo", e.repo, "--json", "-i", e.inst])
        let label = json(remote.stdout)["label"] as? String ?? "?"
        guard let image = try (try e.weed).client().head(e.key("repo/\(label)/app.edb")) else { Issue.record("no image"); return }
        #expect(image.size > 12 * 5 << 20, "\(image.size)")
        // A multipart object's ETag ends in -PARTS.
        let parts = Int(image.etag.split(separator: "-").last?.filter(\.isNumber) ?? "") ?? 0
        #expect(image.etag.contains("-") && parts >= 12, "\(image.etag)")
        if let l = localRSS.kib, let r = remote.kib {
            // Part buffers (4 × 5 MiB) and the transfer's copies, not the image (65 MiB).
            #expect(r - l < 56 << 10, "peak \(r) KiB to S3, \(l) KiB locally, image \(image.size >> 10) KiB")
        }
        try e.run(["verify", "--repo", e.repo], expect: 0)
        #expect(try e.restoreDigest(["--repo", e.repo]) == (try e.digest()))
        #expect(try (try e.weed).client().incompleteUploads(prefix: e.prefix + "/").isEmpty)
    }

    @Test func twoBackupsIntoOneS3RepositoryAtOnceOneIsRefusedAndAWaitingOneFollows() throws {
        let e = try Env()
        let other = e.t.path("db2")
        try e.run(["init", other, "--log-file-size", "64KiB"], expect: 0)
        try e.run(["db", "create", "app", "-i", other], expect: 0)
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(3000, seed: 1)
        try e.load(200, seed: 2, instance: other)
        // The first run is slowed down so the second certainly meets it.
        let slow = try e.start(["backup", "--repo", e.repo, "-i", e.inst, "--max-rate", "256KiB"])
        defer { if slow.isRunning { kill(slow.processIdentifier, SIGKILL) } }
        let lockKey = e.key("repo/\(Repository.lockName)")
        let deadline = Date().addingTimeInterval(20)
        while (try? (try e.weed).client().head(lockKey)) == nil && Date() < deadline && slow.isRunning { usleep(20_000) }
        let refused = try e.run(["backup", "--repo", e.repo, "-i", other], expect: 75)
        #expect(refused.stderr.contains("JET_errBackupInProgress") && refused.stderr.contains("in use"), "\(refused.stderr)")
        try e.run(["backup", "--repo", e.repo, "-i", other, "--wait", "60s"], expect: 0)
        slow.waitUntilExit()
        #expect(slow.terminationStatus == 0)
        let sets = try e.sets()
        #expect(sets.count == 2 && sets.allSatisfy { $0["state"] as? String == "complete" }, "\(sets)")
        #expect(try (try e.weed).client().head(lockKey) == nil)
    }

    /// A repository backup of an instance another process owns (`serve`) is written by the
    /// client, with the client's credentials: the owner, started without any, serves the pages.
    @Test func aRepositoryBackupOfAServedInstanceIsWrittenByTheClientWithItsCredentials() throws {
        let e = try Env()
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(500, seed: 1)
        let owner = Process()
        owner.executableURL = URL(fileURLWithPath: Binary.path)
        owner.arguments = ["serve", "-i", e.inst]
        owner.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") && !$0.key.hasPrefix("JETBACKUP_") }
        let out = Pipe()
        owner.standardOutput = out
        owner.standardError = FileHandle.nullDevice
        try owner.run()
        defer { if owner.isRunning { kill(owner.processIdentifier, SIGKILL); owner.waitUntilExit() } }
        var line = [UInt8]()
        while !line.contains(0x0A), let b = try out.fileHandleForReading.read(upToCount: 1), !b.isEmpty { line += b }
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("serving"))
        let full = json(try e.run(["backup", "--repo", e.repo, "--json", "-i", e.inst], expect: 0).stdout)
        #expect(full["type"] as? String == "full")
        try e.load(200, seed: 2)
        let inc = json(try e.run(["backup", "--repo", e.repo, "--incremental", "--json", "-i", e.inst], expect: 0).stdout)
        #expect(inc["type"] as? String == "incremental", "\(inc)")
        let digest = try e.digest()
        kill(owner.processIdentifier, SIGTERM)
        owner.waitUntilExit()
        #expect(owner.terminationStatus == 0)
        #expect(try e.restoreDigest(["--repo", e.repo]) == digest)
    }

    /// A store that stalls (SIGSTOP, as an overloaded one) during a backup is waited for; one
    /// restarted during a restore is retried until it answers: both finish, the restore equal
    /// to the source.
    @Test func aServerThatStallsOrRestartsMidTransferIsWaitedFor() throws {
        let weed = try SeaweedFS()
        let e = try Env(weed: weed)
        e.extraEnv["JETBACKUP_S3_ATTEMPTS"] = "8"
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(3000, seed: 1)
        let backup = try e.start(["backup", "--repo", e.repo, "-i", e.inst, "--max-rate", "256KiB"])
        defer { if backup.isRunning { kill(backup.processIdentifier, SIGKILL) } }
        var deadline = Date().addingTimeInterval(30)
        while try e.objects().filter({ $0.hasPrefix("repo/2") }).count < 2 && Date() < deadline && backup.isRunning { usleep(20_000) }
        #expect(backup.isRunning, "the backup finished before the server stalled")
        if let pid = weed.pid { kill(pid, SIGSTOP); usleep(2_000_000); kill(pid, SIGCONT) }
        backup.waitUntilExit()
        #expect(backup.terminationStatus == 0)
        let digest = try e.digest()
        let target = e.t.path("target")
        let restore = try e.start(["restore", "--repo", e.repo, "--to", target, "--max-rate", "512KiB"])
        defer { if restore.isRunning { kill(restore.processIdentifier, SIGKILL) } }
        deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: target + "/app.edb") && Date() < deadline && restore.isRunning { usleep(20_000) }
        #expect(restore.isRunning, "the restore finished before the server was restarted")
        weed.kill()
        try weed.start()
        restore.waitUntilExit()
        #expect(restore.terminationStatus == 0)
        #expect(try e.digest(target) == digest)
    }

    /// kill -9 of a backup while a multipart upload of its image is in flight: no set is taken
    /// as valid, the previous one restores, the next run (on this host) takes over the lock the
    /// dead run left and aborts its unfinished upload, and expire removes its objects.
    @Test func aBackupKilledMidUploadLeavesNoSetAndTheNextRunTakesItsLockOver() throws {
        let e = try Env()
        e.extraEnv["JETBACKUP_S3_PART_SIZE"] = "5MiB"
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(300, seed: 1)
        try e.run(["backup", "--repo", e.repo, "-i", e.inst], expect: 0)
        let before = try e.digest()
        try e.run(["load", "app", "--records", "16000", "--seed", "2", "--value-size", "1000", "-i", e.inst], expect: 0)
        let p = try e.start(["backup", "--repo", e.repo, "-i", e.inst, "--max-rate", "4MiB"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let c = try e.weed.client()
        let deadline = Date().addingTimeInterval(30)
        while try c.incompleteUploads(prefix: e.prefix + "/").isEmpty && Date() < deadline && p.isRunning { usleep(20_000) }
        #expect(p.isRunning, "the backup finished before a part was uploaded")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(try !c.incompleteUploads(prefix: e.prefix + "/").isEmpty)
        #expect(try c.head(e.key("repo/\(Repository.lockName)")) != nil)
        let sets = try e.sets()
        #expect(sets.count == 2 && sets.last?["state"] as? String == "incomplete", "\(sets)")
        #expect(try e.restoreDigest(["--repo", e.repo]) == before)
        // The next run is not refused by the dead run's lock, and it ends the dead run's upload.
        let next = json(try e.run(["backup", "--repo", e.repo, "--incremental", "--json", "-i", e.inst], expect: 0).stdout)
        #expect(next["type"] as? String == "full", "\(next)")
        #expect(try c.incompleteUploads(prefix: e.prefix + "/").isEmpty)
        #expect(try e.restoreDigest(["--repo", e.repo]) == (try e.digest()))
        try e.run(["expire", e.repo, "--keep-full", "5"], expect: 0)
        #expect(try e.sets().map { $0["state"] as? String } == ["complete", "complete"])
    }

    /// The server is killed while a backup uploads: the backup fails with 74 (after its
    /// retries) and records nothing; the previous set is intact; the lock the dead run could
    /// not delete is taken over by the next run on this host, which succeeds; expire removes
    /// the stopped run's objects.
    @Test func theServerKilledMidUploadFailsTheBackupCleanlyAndTheNextRunSucceeds() throws {
        let weed = try SeaweedFS()
        let e = try Env(weed: weed)
        try e.run(["repo", "init", e.repo], expect: 0)
        try e.load(500, seed: 1)
        let first = json(try e.run(["backup", "--repo", e.repo, "--json", "-i", e.inst], expect: 0).stdout)["label"] as? String ?? "?"
        let before = try e.digest()
        try e.load(3000, seed: 2)
        let err = Pipe()
        let p = try e.start(["backup", "--repo", e.repo, "-i", e.inst, "--max-rate", "256KiB"], stderr: err)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Killed once the new set has objects in the bucket.
        let deadline = Date().addingTimeInterval(30)
        while try e.objects().filter({ $0.hasPrefix("repo/2") && !$0.hasPrefix("repo/\(first)") }).count < 2 && Date() < deadline
                && p.isRunning {
            usleep(20_000)
        }
        #expect(p.isRunning, "the backup finished before the server was killed")
        weed.kill()
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 74, "\(stderr)")
        try weed.start()
        // The dead run could not delete its lock: it names a process of this host that is gone.
        let lock = try weed.client().get(e.key("repo/\(Repository.lockName)"))
        #expect(String(decoding: lock, as: UTF8.self).hasPrefix("pid \(p.processIdentifier) on host "))
        // The instance recorded nothing: its logs are not covered by the failed run.
        let sets = try e.sets()
        #expect(sets.filter { $0["state"] as? String == "complete" }.count == 1, "\(sets)")
        #expect(sets.allSatisfy { $0["state"] as? String != "damaged" }, "\(sets)")
        try e.run(["verify", "--repo", e.repo], expect: 0)
        #expect(try e.restoreDigest(["--repo", e.repo]) == before)
        try e.run(["backup", "--repo", e.repo, "-i", e.inst], expect: 0)
        #expect(try e.restoreDigest(["--repo", e.repo]) == (try e.digest()))
        try e.run(["expire", e.repo, "--keep-full", "2"], expect: 0)
        let after = try e.sets()
        #expect(after.count == 2 && after.allSatisfy { $0["state"] as? String == "complete" }, "\(after)")
        #expect(try weed.client().incompleteUploads(prefix: e.prefix + "/").isEmpty)
    }
}
