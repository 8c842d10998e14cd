import Foundation
import Testing
@testable import JetStore

/// Backups and commands through the process that owns an instance (README "Backups of a
/// running instance"): `serve`, the control socket, the two-phase end of a backup, and what
/// happens when either side dies.
@Suite(.serialized) struct OwnerTests {
    /// A `jetbackup serve` process, ready when it printed its line.
    final class Served {
        let process: Process
        let instance: String
        init(_ instance: String, extra: [String] = []) throws {
            self.instance = instance
            let out = Pipe()
            process = try Binary.start(["serve", "-i", instance] + extra, stdout: out)
            var line = [UInt8]()
            while true {
                let d = out.fileHandleForReading.readData(ofLength: 1)
                if d.isEmpty || d.first == 0x0A { break }
                line += d
            }
            let text = String(decoding: line, as: UTF8.self)
            #expect(text == "serving \(instance) (pid \(process.processIdentifier))", "\(text)")
        }
        var pid: Int32 { process.processIdentifier }
        func stop() -> Int32 {
            if process.isRunning { kill(pid, SIGTERM) }
            process.waitUntilExit()
            return process.terminationStatus
        }
        func kill9() { kill(pid, SIGKILL); process.waitUntilExit() }
        deinit { if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() } }
    }

    /// A writer through the owner: `load --progress commits` runs in the owner, and each
    /// "committed N" line it prints is a commit acknowledged to this client.
    final class Writer: @unchecked Sendable {
        let process: Process
        private let lock = NSLock()
        private var ackedValue = 0
        private var reader: Thread?
        init(_ instance: String, records: Int, batch: Int) throws {
            let out = Pipe()
            process = try Binary.start(["load", "app", "--records", "\(records)", "--batch", "\(batch)", "--value-size", "200",
                                        "--progress", "commits", "-i", instance], stdout: out)
            let h = out.fileHandleForReading
            let t = Thread { [self] in
                var pending = [UInt8]()
                while true {
                    let d = h.availableData
                    if d.isEmpty { break }
                    pending += d
                    while let nl = pending.firstIndex(of: 0x0A) {
                        let line = String(decoding: pending[..<nl], as: UTF8.self)
                        pending.removeSubrange(...nl)
                        if line.hasPrefix("committed "), let n = Int(line.dropFirst(10)) { lock.withLock { ackedValue = n } }
                    }
                }
            }
            reader = t
            t.start()
        }
        var acked: Int { lock.withLock { ackedValue } }
        func waitFor(_ n: Int) { while acked < n && process.isRunning { usleep(10_000) } }
        func stop() { if process.isRunning { kill(process.processIdentifier, SIGINT) }; process.waitUntilExit() }
    }

    static func digest(_ instance: String) throws -> (hex: String, records: Int) {
        let r = try Binary.run(["digest", "-i", instance])
        let parts = r.stdout.split(separator: " ")
        #expect(r.status == 0, "\(r.stderr)")
        guard parts.count >= 4, let n = Int(parts[parts.count - 2]) else { return ("", -1) }
        return (String(parts[0]), n)
    }

    /// The digest of the first `records` records of the writer's sequence, built locally.
    static func reference(_ t: Temp, records: Int, batch: Int) throws -> String {
        let i = t.path("ref-\(records)")
        if !FileManager.default.fileExists(atPath: i) {
            try Binary.run(["init", i])
            try Binary.run(["load", "app", "--records", "\(records)", "--batch", "\(batch)", "--value-size", "200", "-i", i])
        }
        return try digest(i).hex
    }

    static func instance(_ t: Temp, records: Int = 2000) throws -> String {
        let i = t.path("inst")
        #expect(try Binary.run(["init", i, "--log-file-size", "256KiB"]).status == 0)
        if records > 0 {
            #expect(try Binary.run(["load", "app", "--records", "\(records)", "--value-size", "200", "-i", i]).status == 0)
        }
        return i
    }

    /// The owner under continuous writes while a cron-like loop takes a full backup, then
    /// incrementals (some compressed) with atomic fulls between: every set restores, each
    /// restored content is the writer's at a commit boundary, and holds every commit
    /// acknowledged before its backup started. The owner's own instance ends at its committed state.
    @Test func backupsThroughTheOwnerUnderContinuousWrites() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 0)
        let owner = try Served(i)
        let batch = 25
        let writer = try Writer(i, records: rounds(short: 6000, long: 60000), batch: batch)
        writer.waitFor(500)
        // One atomic set: a full, then incrementals extending it, and now and then a new
        // atomic full replacing it (the incrementals after it extend the new one).
        let set = t.path("set")
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        let incrementals = rounds(short: 4, long: 20)
        var atomicFulls = 0
        for k in 0...incrementals {
            let ackedBefore = writer.acked
            let full = k == 0 || k % 4 == 3
            var args = ["backup", set, "-i", i] + (full ? ["--atomic"] : ["--incremental"])
            if k % 2 == 1 && !full { args.append("--compress-logs") }
            let r = try Binary.run(args)
            #expect(r.status == 0, "backup \(k): \(r.stderr)")
            if full { atomicFulls += 1 }
            try checkRestores(set, t: t, name: "r\(k)", ackedBefore: ackedBefore, batch: batch)
            writer.waitFor(ackedBefore + 250)
        }
        #expect(atomicFulls >= 2)
        writer.stop()
        let committed = writer.acked
        #expect(owner.stop() == 0)
        // The owner's instance: closed cleanly, every acknowledged commit in it.
        let final = try Self.digest(i)
        #expect(final.records >= committed && final.records % batch == 0, "\(final.records) \(committed)")
        #expect(final.hex == (try Self.reference(t, records: final.records, batch: batch)))
    }

    func checkRestores(_ set: String, t: Temp, name: String, ackedBefore: Int, batch: Int) throws {
        let target = t.path(name)
        let r = try Binary.run(["restore", set, "--to", target])
        #expect(r.status == 0, "restore \(name): \(r.stderr)")
        let d = try Self.digest(target)
        #expect(d.records >= ackedBefore, "\(name): \(d.records) records restored, \(ackedBefore) acknowledged before the backup started")
        #expect(d.records % batch == 0, "\(name): \(d.records) records is not a commit boundary")
        #expect(d.hex == (try Self.reference(t, records: d.records, batch: batch)), "\(name): content differs from the writer's at \(d.records)")
        try? FileManager.default.removeItem(atPath: target)
    }

    /// The headers' last backups and the instance's log files, to see what a session changed.
    static func backupState(_ i: String) throws -> String {
        let info = json(try Binary.run(["info", "--json", "-i", i]).stdout)
        func text(_ v: Any?) -> String {
            guard let v, !(v is NSNull), let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) else { return "-" }
            return String(decoding: d, as: UTF8.self)
        }
        let dbs = (info["databases"] as? [[String: Any]] ?? []).map { "\(text($0["fullPrev"])) \(text($0["incPrev"]))" }
        let logs = try FileManager.default.contentsOfDirectory(atPath: i).filter { $0.hasPrefix("edb0") }.sorted()
        return "\(dbs) \(logs.first ?? "") "
    }

    /// A client killed (kill -9) at a random moment of its backup: the owner aborts the
    /// session — no header change, no truncation — keeps serving, and the next backup works.
    @Test func clientKilledMidBackupLeavesTheInstanceUnchanged() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 30000)
        let owner = try Served(i)
        let set = t.path("set")
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", set, "-i", i]).status == 0)
        #expect(try Binary.run(["load", "app", "--records", "5000", "--seed", "3", "-i", i]).status == 0)
        let n = rounds(short: 4, long: 200)
        var killed = 0
        // The set the final incremental extends: a kill that lands after a backup completed
        // (its set whole, the headers recording it) leaves that backup the instance's last.
        var lastSet = set
        var earlierDirs: [String] = []
        for k in 0..<n {
            let before = try Self.backupState(i)
            let atomic = k % 2 == 0
            let dir = atomic ? t.path("atomic") : t.path("full\(k)")
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            let p = try Binary.start(["backup", dir, "-i", i] + (atomic ? ["--atomic"] : []))
            usleep(UInt32.random(in: 0...120_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal {
                killed += 1
                // Give the owner a moment to see the connection end.
                usleep(50_000)
                let after = try Self.backupState(i)
                if after != before {
                    // Only a backup that completed may have changed the instance: its set
                    // verifies. That may be an earlier round's: a client killed while the owner
                    // was recording its (whole) set, which the owner finished after that round
                    // looked.
                    let whole = ([dir] + earlierDirs.reversed()).first { (try? Binary.run(["verify", $0]).status) == 0 }
                    #expect(whole != nil, "round \(k): the killed backup changed the instance but left no whole set")
                    if let whole { lastSet = whole }
                }
            } else if p.terminationStatus == 0 {
                lastSet = dir  // finished before the kill
            }
            earlierDirs.removeAll { $0 == dir }
            earlierDirs.append(dir)
            #expect(owner.process.isRunning)
        }
        // A client killed while the owner recorded its (whole) set lets the owner finish that
        // after the round looked, on a loaded machine well after it: wait until the instance's
        // backup state holds still, then extend the set whose last generation is the one the
        // instance records as its last backup's (the rounds' guess above, checked).
        var state = try Self.backupState(i)
        for _ in 0..<20 {
            usleep(250_000)
            let now = try Self.backupState(i)
            if now == state { break }
            state = now
        }
        let recorded = (json(try Binary.run(["info", "--json", "-i", i]).stdout)["databases"] as? [[String: Any]] ?? [])
            .flatMap { db in ["fullPrev", "incPrev"].compactMap { k in (db[k] as? [String: Any])?["genHigh"] as? Int } }.max()
        func lastGeneration(_ dir: String) -> Int? {
            guard let r = try? Binary.run(["show", dir, "--json"]), r.status == 0 else { return nil }
            return (json(r.stdout)["chain"] as? [[String: Any]])?.last?["genHigh"] as? Int
        }
        if let recorded, lastGeneration(lastSet) != recorded,
           let found = ([set] + earlierDirs).reversed().first(where: { lastGeneration($0) == recorded }) {
            lastSet = found
        }
        // The next backups work: no session was left behind.
        let inc = try Binary.run(["backup", "--incremental", lastSet, "-i", i])
        #expect(inc.status == 0, "\(inc.stderr)")
        let r = try Binary.run(["restore", lastSet, "--to", t.path("r")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.digest(t.path("r")).hex == (try Self.digest(i)).hex)
        #expect(owner.stop() == 0)
        print("client kill -9: \(killed) of \(n) rounds killed mid-backup")
    }

    /// The owner killed (kill -9) while a client backs up: the client exits 75 with
    /// JET_errBackupAbortByServer, no set that would pass as valid is left, the instance
    /// recovers to its committed state, and the next backup (local, the instance is free) works.
    @Test func ownerKilledMidBackupClientExits75() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 40000)
        let committed = try Self.digest(i).hex
        let n = rounds(short: 2, long: 100)
        for k in 0..<n {
            let owner = try Served(i)
            let dir = t.path("set\(k)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            let err = Pipe()
            let p = try Binary.start(["backup", dir, "-i", i], stderr: err)
            usleep(UInt32.random(in: 0...80_000))
            owner.kill9()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            if p.terminationStatus != 0 {
                #expect(p.terminationStatus == 75, "round \(k): \(p.terminationStatus) \(text)")
                #expect(text.contains("JET_errBackupAbortByServer") || text.contains("JET_errTermInProgress"), "\(text)")
                let v = try Binary.run(["verify", dir])
                #expect(v.status != 0, "round \(k): the set of a backup that failed verifies as valid")
            }
            // The instance recovers to what was committed, and backs up locally.
            #expect(try Self.digest(i).hex == committed)
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            let b = try Binary.run(["backup", dir, "-i", i])
            #expect(b.status == 0, "\(b.stderr)")
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    /// SIGINT to a client mid-backup: it stops (75), undoes its set, the owner aborts the
    /// session, and nothing is recorded or truncated.
    @Test func clientInterruptedMidBackupAbortsTheSession() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 40000)
        let owner = try Served(i)
        for k in 0..<3 {
            let before = try Self.backupState(i)
            let logs = try FileManager.default.contentsOfDirectory(atPath: i).filter { $0.hasPrefix("edb0") }.sorted()
            let dir = t.path("set\(k)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            let err = Pipe()
            let p = try Binary.start(["backup", dir, "-i", i], stderr: err)
            // Once the run holds its destination, its SIGINT handler is in place.
            while p.isRunning && !FileManager.default.fileExists(atPath: dir + "/.jetbackup-lock") { usleep(1000) }
            usleep(UInt32(k * 20_000))
            kill(p.processIdentifier, SIGINT)
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus != 0 else { continue }
            #expect(p.terminationStatus == 75 && text.contains("JET_errTermInProgress"), "\(p.terminationStatus) \(text)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != ".jetbackup-lock" }.isEmpty)
            usleep(50_000)
            #expect(try Self.backupState(i) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: i).filter { $0.hasPrefix("edb0") }.sorted().first == logs.first)
        }
        #expect(owner.stop() == 0)
    }

    /// The issue's example: `load` owns the instance; `backup` and `get` run through it
    /// instead of exiting 75, and the set restores to a commit boundary of the load.
    @Test func backupAndGetThroughALoadThatOwnsTheInstance() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 0)
        let writer = try Writer(i, records: 60_000, batch: 20)
        writer.waitFor(300)
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let acked = writer.acked
        let b = try Binary.run(["backup", dir, "-i", i])
        #expect(b.status == 0, "\(b.stderr)")
        let g = try Binary.run(["get", "app", "0000000000000000", "-i", i])
        #expect(g.status == 1 && g.stderr.contains("JET_errRecordNotFound"), "\(g.status) \(g.stderr)")
        #expect(writer.process.isRunning, "the load ended before the backup: nothing ran through it")
        writer.stop()
        #expect(try String(contentsOfFile: i + "/events.log", encoding: .utf8).contains("full backup session for pid"))
        let r = try Binary.run(["restore", dir, "--to", t.path("r")])
        #expect(r.status == 0, "\(r.stderr)")
        let d = try Self.digest(t.path("r"))
        #expect(d.records >= acked && d.records % 20 == 0, "\(d.records) \(acked)")
        #expect(d.hex == (try Self.reference(t, records: d.records, batch: 20)))
    }

    /// A second backup while one runs gets JET_errBackupInProgress (exit 75); once the first
    /// client's connection closes, its session is gone and a backup works.
    @Test func secondBackupWhileOneRunsIsRefused() throws {
        let t = Temp()
        let i = try Self.instance(t)
        let owner = try Served(i)
        let client = try #require(try ControlClient.connect(instance: i))
        let session = try RemoteBackupSession.begin(.full, client: client)
        #expect(session.databases.map(\.name) == ["app"])
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let r = try Binary.run(["backup", dir, "-i", i])
        #expect(r.status == 75 && r.stderr.contains("JET_errBackupInProgress (-505)"), "\(r.status) \(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        client.close()
        usleep(100_000)
        let again = try Binary.run(["backup", dir, "-i", i])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(owner.stop() == 0)
    }

    /// Two clients at once: a backup and commands run side by side through one owner.
    @Test func twoClientsAtOnce() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 20000)
        let owner = try Served(i)
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let b = try Binary.start(["backup", dir, "-i", i])
        var gets = 0
        while b.isRunning && gets < 50 {
            let g = try Binary.run(["scan", "app", "--limit", "1", "-i", i])
            #expect(g.status == 0, "\(g.stderr)")
            gets += 1
        }
        b.waitUntilExit()
        #expect(b.terminationStatus == 0)
        #expect(try Binary.run(["restore", dir, "--to", t.path("r")]).status == 0)
        #expect(try Self.digest(t.path("r")).hex == (try Self.digest(i)).hex)
        #expect(owner.stop() == 0)
    }

    /// A client that stops reading is timed out: its session is aborted and the owner serves on.
    @Test func clientThatStopsReadingIsTimedOut() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 20000)
        let owner = try Served(i, extra: ["--io-timeout", "1"])
        let client = try #require(try ControlClient.connect(instance: i))
        _ = try RemoteBackupSession.begin(.full, client: client)
        // Ask for the first 4 MiB again and again and read none: more than the socket queues
        // (ControlServer.sendBuffer), so the owner's sends stall, then it gives up.
        for _ in 0..<16 { try? client.socket.send(.readDatabase(name: "app", offset: 0, length: 4 << 20), timeout: 1) }
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        var r = try Binary.run(["backup", dir, "-i", i])
        let deadline = Date().addingTimeInterval(10)
        while r.status != 0 && Date() < deadline {
            #expect(r.status == 75, "\(r.stderr)")
            usleep(300_000)
            r = try Binary.run(["backup", dir, "-i", i])
        }
        #expect(r.status == 0, "\(r.stderr)")
        client.close()
        #expect(owner.stop() == 0)
    }

    /// Every command's output, error text and exit status through the owner equal the local ones.
    @Test func commandOutputThroughTheOwnerEqualsLocal() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 300)
        #expect(try Binary.run(["put", "app", "k1", "v1", "-i", i]).status == 0)
        let commands: [[String]] = [
            ["get", "app", "k1"], ["get", "app", "missing"], ["get", "nope", "k"], ["get", "app", "k1", "--json"],
            ["scan", "app", "--limit", "5"], ["scan", "app", "--json", "--limit", "3"], ["digest"], ["db", "list"], ["db", "list", "--json"],
            ["config"], ["config", "cache-size"], ["config", "--json"], ["check"], ["logs"], ["logs", "--json"],
            ["get", "app", "6b31", "--hex"], ["scan", "app", "--prefix", "zz"],
        ]
        var local: [[String]: Binary.Result] = [:]
        for c in commands { local[c] = try Binary.run(c + ["-i", i]) }
        let owner = try Served(i)
        for c in commands {
            let r = try Binary.run(c + ["-i", i])
            let l = try #require(local[c])
            #expect(r.status == l.status && r.stdout == l.stdout && r.stderr == l.stderr,
                    "\(c): through the owner \(r.status) \(r.stdout.prefix(300)) \(r.stderr) / local \(l.status) \(l.stdout.prefix(300)) \(l.stderr)")
        }
        // Changes through the owner, as local ones: put (a value from stdin too), delete, db create.
        #expect(try Binary.run(["put", "app", "k2", "-", "-i", i], stdin: "from stdin").status == 0)
        #expect(try Binary.run(["get", "app", "k2", "-i", i]).stdout == "from stdin\n")
        let d = try Binary.run(["delete", "app", "k1", "-i", i])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(try Binary.run(["get", "app", "k1", "-i", i]).status == 1)
        #expect(try Binary.run(["db", "create", "second", "-i", i]).status == 0)
        let dup = try Binary.run(["db", "create", "second", "-i", i])
        #expect(dup.status == 73 && dup.stderr.contains("JET_errDatabaseDuplicate"), "\(dup.stderr)")
        // A working directory and -i relative to it are the client's.
        let rel = try Binary.run(["get", "app", "k2", "-i", "inst"], cwd: t.root)
        #expect(rel.status == 0 && rel.stdout == "from stdin\n", "\(rel.stderr)")
        // Refused against a live instance, naming the owner.
        for c in [["init", i], ["config", "cache-size", "1MiB", "-i", i], ["restore", t.root, "--to", i]] {
            let r = try Binary.run(c)
            #expect(r.status == 75 && r.stderr.contains("process \(owner.pid)"), "\(c): \(r.status) \(r.stderr)")
        }
        #expect(owner.stop() == 0)
        #expect(try Binary.run(["get", "app", "k2", "-i", i]).stdout == "from stdin\n")
    }

    /// A socket left by an owner that is gone (kill -9) is removed and the command runs here.
    @Test func staleSocketIsRemovedAndTheCommandRunsLocally() throws {
        let t = Temp()
        let i = try Self.instance(t)
        let owner = try Served(i)
        owner.kill9()
        #expect(FileManager.default.fileExists(atPath: i + "/control.sock"))
        let r = try Binary.run(["digest", "-i", i])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: i + "/control.sock"))
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", dir, "-i", i]).status == 0)
    }

    /// Garbage, truncated, oversized and wrong-version messages: each gets an error or a
    /// closed connection; the owner neither crashes nor stalls, and serves the next client.
    @Test func malformedMessagesNeverCrashOrStallTheOwner() throws {
        let t = Temp()
        let i = try Self.instance(t)
        let owner = try Served(i, extra: ["--io-timeout", "1"])
        let sock = i + "/control.sock"
        // Wrong version: refused, saying both versions.
        do {
            let s = try #require(try ControlSocket.connect(sock))
            try s.send(.hello(version: 99, pid: 1))
            guard case .error(_, let m) = try s.receive(timeout: 5) else { Issue.record("no error for version 99"); return }
            #expect(m.contains("version 1") && m.contains("version 99"), "\(m)")
        }
        func raw(_ bytes: [UInt8], hello: Bool) throws {
            let s = try #require(try ControlSocket.connect(sock))
            if hello {
                try s.send(.hello(version: ControlMessage.version, pid: 1))
                _ = try s.receive(timeout: 5)
            }
            _ = bytes.withUnsafeBytes { send(s.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // The owner answers with an error (and closes, or waits for the next request: a
            // random frame can be a well-formed message it does not take here, such as a reply
            // type or a session request with no session), or closes: it never hangs past its
            // timeouts.
            let t0 = Date()
            while Date().timeIntervalSince(t0) < 5 {
                do {
                    if case .error = try s.receive(timeout: 5) { break }
                } catch { break }
            }
            #expect(Date().timeIntervalSince(t0) < 4.5, "the owner held the connection after \(bytes) (hello: \(hello))")
        }
        var rng = SystemRandomNumberGenerator()
        for hello in [false, true] {
            try raw([0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3], hello: hello)                 // oversized
            try raw([5, 0, 0, 0, 11, 1], hello: hello)                              // truncated, then silence
            try raw([0, 0, 0, 0], hello: hello)                                     // empty frame
            try raw([3, 0, 0, 0, 250, 0, 0], hello: hello)                          // unknown type
            try raw([9, 0, 0, 0, 11, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0], hello: hello) // a string longer than its frame
            for _ in 0..<20 {
                let n = Int.random(in: 1...64, using: &rng)
                try raw([UInt8(n), 0, 0, 0] + (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }, hello: hello)
            }
        }
        #expect(owner.process.isRunning)
        let r = try Binary.run(["get", "app", "x", "-i", i])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(owner.stop() == 0)
    }

    /// Only the owner's uid and root may connect: another user is refused with 77
    /// (JET_errFileAccessDenied by SO_PEERCRED when it can reach the socket at all).
    @Test func clientOfAnotherUserIsRefusedWith77() throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            print("skipped: needs root and setpriv"); return
        }
        let t = Temp()
        let i = try Self.instance(t)
        let owner = try Served(i)
        let asNobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups", Binary.path]
        _ = CommandTests.system("/bin/chmod", ["0755", t.root])
        func asOther(_ args: [String]) throws -> (Int32, String) {
            let err = Pipe()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = asNobody + args
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        // The instance directory is 0700: the other user cannot even reach the socket.
        var (status, text) = try asOther(["get", "app", "k", "-i", i])
        #expect(status == 77, "\(status) \(text)")
        // Even with the directory and socket opened up, the owner checks the peer's uid.
        _ = CommandTests.system("/bin/chmod", ["0755", i])
        _ = CommandTests.system("/bin/chmod", ["0666", i + "/control.sock"])
        (status, text) = try asOther(["get", "app", "k", "-i", i])
        #expect(status == 77 && text.contains("JET_errFileAccessDenied") && text.contains("uid 65534"), "\(status) \(text)")
        (status, text) = try asOther(["backup", t.root + "/x", "-i", i])
        #expect(status == 77, "\(status) \(text)")
        #expect(owner.process.isRunning)
        #expect(owner.stop() == 0)
        #expect(try String(contentsOfFile: i + "/events.log", encoding: .utf8).contains("control connection refused"))
    }

    /// `serve` ends on SIGTERM: exit 0, the socket gone, the instance shut down cleanly; a
    /// backup running then fails with 75 and leaves nothing recorded.
    @Test func serveStopsCleanlyOnSIGTERM() throws {
        let t = Temp()
        let i = try Self.instance(t, records: 40000)
        let owner = try Served(i)
        let before = try Self.backupState(i)
        let dir = t.path("set")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let err = Pipe()
        let b = try Binary.start(["backup", dir, "-i", i], stderr: err)
        usleep(20_000)
        #expect(owner.stop() == 0)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        b.waitUntilExit()
        if b.terminationStatus != 0 {
            #expect(b.terminationStatus == 75, "\(text)")
            #expect(try Self.backupState(i) == before)
        }
        #expect(!FileManager.default.fileExists(atPath: i + "/control.sock"))
        let info = try Binary.run(["info", "-i", i])
        #expect(info.stdout.contains("clean"), "\(info.stdout)")
    }
}
