import Foundation
import Testing
@testable import JetStore

/// Who may use an instance and what a refused user is told: another user's instance is
/// "permission denied" (77), not "no instance"; a held lock names its holder, or says it has
/// not written its name yet; a log generation missing between kept ones is reported by check.
@Suite struct InstanceAccessTests {
    /// The way to run the binary as an unprivileged user (nobody), or nil where there is none.
    static let asNobody: [String]? = {
        guard getuid() == 0 else { return nil }
        for prefix in [["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], ["/usr/sbin/runuser", "-u", "nobody", "--"],
                       ["/sbin/runuser", "-u", "nobody", "--"]] where FileManager.default.isExecutableFile(atPath: prefix[0]) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: prefix[0])
            p.arguments = Array(prefix.dropFirst()) + [Binary.path, "--version"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            guard (try? p.run()) != nil else { continue }
            p.waitUntilExit()
            if p.terminationStatus == 0 { return prefix }
        }
        return nil
    }()

    static func run(_ prefix: [String], _ args: [String]) throws -> Binary.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: prefix[0])
        p.arguments = Array(prefix.dropFirst()) + [Binary.path] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Binary.Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func anotherUsersInstanceIsPermissionDeniedNotMissing() throws {
        guard let prefix = Self.asNobody else {
            print("skipped: cannot run the binary as another user (not root, or no setpriv or runuser that works here)")
            return
        }
        let t = Temp()
        chmod(t.root, 0o755)  // mkdtemp made it 0700: the instance's own mode is what is tested
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["db", "create", "app", "-i", i])
        #expect(try Binary.run(["put", "app", "k", "v", "-i", i]).status == 0)
        for args in [["info"], ["get", "app", "k"], ["config"], ["check"], ["logs"], ["db", "list"], ["put", "app", "k", "w"]] {
            let r = try Self.run(prefix, args + ["-i", i])
            #expect(r.status == 77, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("jetbackup: JET_errPermissionDenied (-1809): permission denied on \(i)"), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("jetbackup init"), "\(args): \(r.stderr)")
        }
        // The owner still uses it; nothing was changed.
        #expect(try Binary.run(["get", "app", "k", "-i", i]).stdout == "v\n")
    }

    /// The engine says what a directory is; the hint to create one comes from the CLI.
    @Test func notAnInstanceNamesNoCommandInTheEngineAndTheCLIAddsTheHint() throws {
        let t = Temp()
        for path in [t.root, t.path("missing")] {
            do {
                _ = try Instance.open(at: path, owner: "test")
                Issue.record("\(path) opened")
            } catch let e as JetError {
                #expect(e.code == .fileNotFound && !e.message.contains("jetbackup"), "\(e)")
            }
            let r = try Binary.run(["info", "-i", path])
            #expect(r.status == 66 && r.stderr.contains("create one with 'jetbackup init \(path)'"), "\(r.stderr)")
        }
        let set = t.path("set"), i = t.path("inst")
        try Binary.run(["init", i])
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        try Binary.run(["backup", set, "-i", i])
        let r = try Binary.run(["logs", "-i", set])
        #expect(r.status == 65 && r.stderr.contains("'jetbackup restore \(set) --to NEWDIR'"), "\(r.stderr)")
    }

    /// Takes the instance's lock in this process, with `record` as the LOCK file's content.
    static func holdLock(_ instance: String, record: String) throws -> Int32 {
        let fd = open(instance + "/" + FileNames.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        #expect(fd >= 0)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(ftruncate(fd, 0) == 0)
        let b = Array(record.utf8)
        #expect(b.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } == b.count)
        return fd
    }

    /// A holder that has taken the lock but not yet written its name (the file is empty), or whose
    /// file still names a holder that has exited: the refusal says so instead of "unknown" or the
    /// name of a process that is gone.
    @Test func aLockNotYetNamedByItsHolderSaysSo() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        let dead = gone.processIdentifier
        for record in ["", "\(dead)\npid \(dead) (jetbackup load app)" + String(repeating: " ", count: 100)] {
            let fd = try Self.holdLock(i, record: record)
            let r = try Binary.run(["info", "-i", i])
            close(fd)
            #expect(r.status == 75, "\(r.stderr)")
            #expect(r.stderr.contains("in use by another process (it has just taken the lock and not yet written its name)"), "\(r.stderr)")
            #expect(!r.stderr.contains("unknown") && !r.stderr.contains("pid \(dead)"), "\(r.stderr)")
        }
        // A live holder is named, as before.
        let fd = try Self.holdLock(i, record: "\(getpid())\npid \(getpid()) (jetbackup backup /x)")
        let r = try Binary.run(["info", "-i", i])
        close(fd)
        #expect(r.status == 75 && r.stderr.contains("(pid \(getpid()) (jetbackup backup /x))"), "\(r.stderr)")
        #expect(try Binary.run(["info", "-i", i]).status == 0)
    }

    /// Taking the lock over and over while another thread looks at the LOCK file: once written,
    /// the file is never seen empty (truncating first and then writing left such a moment).
    @Test func theLockOwnerRecordIsNeverSeenEmpty() throws {
        let t = Temp()
        let path = t.path("LOCK")
        let fs = PosixFileSystem()
        try fs.lock(path, owner: "first").release()
        final class Watch: @unchecked Sendable {
            let lock = NSLock()
            var stop = false, emptySeen = 0, looks = 0
        }
        let w = Watch()
        let watcher = Thread {
            var st = stat()
            while !w.lock.withLock({ w.stop }) {
                let empty = stat(path, &st) == 0 && st.st_size == 0
                w.lock.withLock { w.looks += 1; if empty { w.emptySeen += 1 } }
            }
        }
        watcher.start()
        for n in 0..<rounds(short: 3000, long: 30000) {
            try fs.lock(path, owner: n % 2 == 0 ? "pid 1 (a much longer owner name than the other)" : "pid 2 (short)").release()
        }
        w.lock.withLock { w.stop = true }
        while !watcher.isFinished { usleep(1000) }
        #expect(w.lock.withLock { w.emptySeen } == 0, "seen empty \(w.emptySeen) times in \(w.looks) looks")
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text == "\(getpid())\npid 2 (short)" || text == "\(getpid())\npid 1 (a much longer owner name than the other)")
    }

    /// A generation deleted from the middle of the kept logs: `check` reports the hole
    /// (JET_errMissingLogFile, 65) and `logs` shows it, where check used to exit 0 and the next
    /// incremental backup then failed.
    @Test func checkReportsAGenerationMissingBetweenKeptOnes() throws {
        let t = Temp()
        let i = t.path("inst"), set = t.path("set")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["load", "app", "--records", "3000", "-i", i])
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", set, "-i", i]).status == 0)
        try Binary.run(["load", "app", "--records", "3000", "--seed", "2", "-i", i])
        #expect(try Binary.run(["check", "-i", i]).status == 0)
        let gens = ((try? FileManager.default.contentsOfDirectory(atPath: i)) ?? []).compactMap { FileNames.parseArchivedLog($0) }.sorted()
        #expect(gens.count >= 4)
        let victim = gens[2]
        try FileManager.default.removeItem(atPath: i + "/" + FileNames.archivedLog(victim))
        var r = try Binary.run(["check", "-i", i])
        #expect(r.status == 65, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("JET_errMissingLogFile (-528): log generation \(victim) (\(i)/\(FileNames.archivedLog(victim))) is missing"), "\(r.stderr)")
        #expect(r.stdout.contains("1 missing"))
        r = try Binary.run(["check", "--json", "-i", i])
        #expect(r.status == 65 && json(r.stdout)["generationsMissing"] as? Int == 1)
        r = try Binary.run(["logs", "--json", "-i", i])
        let rows = json(r.stdout)["generations"] as? [[String: Any]] ?? []
        #expect(rows.contains { $0["generation"] as? Int == Int(victim) && $0["missing"] as? Bool == true })
        #expect(rows.count == gens.count + 1)
        r = try Binary.run(["logs", "-i", i])
        #expect(r.stdout.contains("MISSING"))
        // Two in a row are one problem naming both.
        try FileManager.default.removeItem(atPath: i + "/" + FileNames.archivedLog(victim + 1))
        r = try Binary.run(["check", "-i", i])
        #expect(r.status == 65 && r.stderr.contains("log generations \(victim)-\(victim + 1)") && r.stdout.contains("2 missing"), "\(r.stderr)")
    }

    /// Truncation deletes generations two at a time, so one interrupted between two unlinks
    /// can leave a gap among the generations a recorded backup holds and the checkpoint has
    /// passed. Nothing needs them: `check` passes, `logs` shows the gap, and the next
    /// backup's truncation removes what is left around it.
    @Test func aGapLeftByAnInterruptedTruncationIsNoProblem() throws {
        let t = Temp()
        let i = t.path("inst"), set = t.path("set")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["load", "app", "--records", "1000", "-i", i])
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", set, "-i", i]).status == 0)
        try Binary.run(["load", "app", "--records", "3000", "--seed", "2", "-i", i])
        #expect(try Binary.run(["backup", set, "--incremental", "-i", i]).status == 0)
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: set + "/MANIFEST.json"))) as? [String: Any]
        let chain = m?["chain"] as? [[String: Any]] ?? []
        let low = chain.last?["genLow"] as? Int ?? 0, high = chain.last?["genHigh"] as? Int ?? 0
        #expect(high - low >= 3, "the incremental copied \(low)-\(high)")
        // What a truncation cut between its unlinks leaves: the first and third of the
        // truncated generations back in place, the second gone.
        for g in [low, low + 2] {
            let name = FileNames.archivedLog(UInt32(g))
            try FileManager.default.copyItem(atPath: set + "/" + name, toPath: i + "/" + name)
        }
        var r = try Binary.run(["check", "-i", i])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        r = try Binary.run(["logs", "--json", "-i", i])
        let rows = json(r.stdout)["generations"] as? [[String: Any]] ?? []
        #expect(rows.contains { $0["generation"] as? Int == low + 1 && $0["missing"] as? Bool == true }, "\(r.stdout)")
        // Only a gap that nothing needs is passed over: one among the generations after the
        // backup is still reported (checkReportsAGenerationMissingBetweenKeptOnes).
        try Binary.run(["load", "app", "--records", "500", "--seed", "3", "-i", i])
        #expect(try Binary.run(["backup", set, "--incremental", "-i", i]).status == 0)
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: i)) ?? []).compactMap { FileNames.parseArchivedLog($0) }
        #expect(!left.contains(UInt32(low)) && !left.contains(UInt32(low + 2)), "\(left)")
        #expect(try Binary.run(["check", "-i", i]).status == 0)
    }
}
