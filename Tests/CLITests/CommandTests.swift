import ArgumentParser
import Foundation
import Testing
@testable import JetBackupCLI
@testable import JetStore

@Suite struct ParsingTests {
    @Test func parsesCommandsInProcess() throws {
        let b = try JetBackupCommand.parseAsRoot(JetBackupCommand.normalize(["backup", "/b", "--incremental", "--compress-logs", "-i", "/x"])) as! Backup
        #expect(b.dir == "/b" && b.incremental && b.compressLogsValue == 3 && b.instance.instance == "/x")
        let b2 = try JetBackupCommand.parseAsRoot(JetBackupCommand.normalize(["-i", "/x", "backup", "--compress-logs=9"])) as! Backup
        #expect(b2.compressLogsValue == 9 && b2.instance.instance == "/x" && b2.dir == nil)
        // `--compress-logs` takes an optional level: alone it is 3, and a directory after it
        // is still the directory.
        let b3 = try #require(try JetBackupCommand.parseAsRoot(["backup", "--compress-logs", "/b"]) as? Backup)
        #expect(b3.compressLogsValue == 3 && b3.dir == "/b")
        let b4 = try #require(try JetBackupCommand.parseAsRoot(["backup", "/b", "--compress-logs", "9"]) as? Backup)
        #expect(b4.compressLogsValue == 9 && b4.dir == "/b")
        let b5 = try #require(try JetBackupCommand.parseAsRoot(["backup", "/b"]) as? Backup)
        #expect(b5.compressLogsValue == nil && b5.progress == .auto)
        let l = try JetBackupCommand.parseAsRoot(["load", "app", "--records", "10", "--batch", "5", "--update-ratio", "0.5"]) as! Load
        #expect(l.records == 10 && l.batch == 5 && l.updateRatio == 0.5)
        #expect(throws: (any Error).self) { _ = try JetBackupCommand.parseAsRoot(["load", "app", "--records", "-5"]) }
        #expect(throws: (any Error).self) { _ = try JetBackupCommand.parseAsRoot(["init", "--page-size", "12parsecs"]) }
        #expect(throws: (any Error).self) { _ = try JetBackupCommand.parseAsRoot(["backup", "--progress", "fancy"]) }
    }

    @Test func sizes() throws {
        #expect(try InstanceParameters.parseSize("4096") == 4096)
        #expect(try InstanceParameters.parseSize("64KiB") == 65536)
        #expect(try InstanceParameters.parseSize("1MiB") == 1 << 20)
        #expect(try InstanceParameters.parseSize("2GiB") == 2 << 30)
        for bad in ["", "-1", "1XB", "KiB", "99999999999999999999", "9999999999TiB"] {
            #expect(throws: JetError.self) { _ = try InstanceParameters.parseSize(bad) }
        }
    }
}

/// The binary as a user runs it: output, exit status, files on disk.
@Suite struct CommandTests {
    @Test func instanceCommandsEndToEnd() throws {
        let t = Temp()
        let i = t.path("inst")
        var r = try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: i + "/instance.json"))
        #expect(try Binary.run(["-i", i, "db", "create", "app"]).status == 0)
        #expect(try Binary.run(["db", "list"], env: ["JETBACKUP_INSTANCE": i]).stdout == "app\n")
        #expect(try Binary.run(["put", "app", "k1", "v1"], cwd: i).status == 0)
        #expect(try Binary.run(["put", "app", "k2", "-", "-i", i], stdin: "from stdin").status == 0)
        #expect(try Binary.run(["put", "app", "6869", "ff00", "--hex", "-i", i]).status == 0)
        #expect(try Binary.run(["get", "app", "k2", "-i", i]).stdout == "from stdin\n")
        #expect(try Binary.run(["get", "app", "hi", "--escaped", "-i", i]).stdout == "\\xff\\x00\n")
        #expect(try Binary.run(["get", "app", "6869", "--hex", "-i", i]).stdout == "ff00\n")
        r = try Binary.run(["scan", "app", "--prefix", "k", "-i", i])
        #expect(r.stdout == "k1\tv1\nk2\tfrom stdin\n")
        r = try Binary.run(["scan", "app", "--limit", "1", "--json", "-i", i])
        #expect((json(r.stdout)["count"] as? Int) == 1)
        r = try Binary.run(["get", "app", "nope", "-i", i])
        #expect(r.status == 1 && r.stderr.contains("JET_errRecordNotFound (-1601)"))
        #expect(try Binary.run(["delete", "app", "k1", "-i", i]).status == 0)
        #expect(try Binary.run(["delete", "app", "k1", "-i", i]).status == 1)
        r = try Binary.run(["load", "app", "--records", "3000", "--batch", "100", "--update-ratio", "0.1", "-i", i])
        #expect(r.status == 0 && r.stdout.contains("3000 records") && r.stdout.contains("records/s"))
        #expect(r.stderr.isEmpty, "no progress bar on a pipe")
        let d1 = try Binary.run(["digest", "-i", i]).stdout.split(separator: " ").first.map(String.init)
        let d2 = try Binary.run(["digest", "app", "--json", "-i", i])
        #expect(d1?.count == 64 && json(d2.stdout)["digest"] as? String != nil)
        r = try Binary.run(["info", "--json", "-i", i])
        let dbs = json(r.stdout)["databases"] as? [[String: Any]]
        #expect(dbs?.first?["state"] as? String == "clean shutdown")
        r = try Binary.run(["logs", "--json", "-i", i])
        let gens = json(r.stdout)["generations"] as? [[String: Any]] ?? []
        #expect(gens.count > 2 && gens.allSatisfy { $0["checksumOk"] as? Bool == true })
        r = try Binary.run(["check", "-i", i])
        #expect(r.status == 0 && r.stdout.contains("0 bad"))
        // A truncation keeps what it removes as spares for later rolls: info counts them, logs lists none.
        #expect(try Binary.run(["backup", "-i", i]).status == 0)
        r = try Binary.run(["info", "--json", "-i", i])
        let spares = json(r.stdout)["spareLogs"] as? [String: Any]
        #expect((spares?["count"] as? Int ?? 0) > 0 && (spares?["bytes"] as? Int ?? 0) > 0)
        #expect(try Binary.run(["info", "-i", i]).stdout.contains("spare logs:"))
        #expect(try !Binary.run(["logs", "--json", "-i", i]).stdout.contains(".jrs"))
        r = try Binary.run(["events", "--limit", "3", "-i", i])
        #expect(r.stdout.split(separator: "\n").count == 3)
        r = try Binary.run(["config", "-i", i])
        #expect(r.stdout.contains("page-size") && r.stdout.contains("4096"))
        #expect(try Binary.run(["config", "circular-logging", "true", "-i", i]).status == 0)
        #expect(try Binary.run(["config", "circular-logging", "-i", i]).stdout == "true\n")
        r = try Binary.run(["config", "page-size", "8KiB", "-i", i])
        #expect(r.status == 64 && r.stderr.contains("JET_errInvalidParameter"))
    }

    @Test func errorsHaveESENamesAndExitCodes() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["db", "create", "app", "-i", i])
        // Not an instance: 66, nothing created.
        var r = try Binary.run(["info", "-i", t.path("nothing")])
        #expect(r.status == 66 && r.stderr.hasPrefix("jetbackup: JET_errFileNotFound (-1811):"))
        #expect(!FileManager.default.fileExists(atPath: t.path("nothing")))
        r = try Binary.run(["get", "app", "x", "-i", t.root])
        #expect(r.status == 66)
        // --json errors are JSON on stdout.
        r = try Binary.run(["get", "nodb", "x", "--json", "-i", i])
        let j = json(r.stdout)
        #expect(r.status == 66 && j["result"] as? String == "error" && j["error"] as? String == "JET_errDatabaseNotFound" && j["code"] as? Int == -1203)
        // Bad values: 64, never a trap.
        for args in [["put", "app", String(repeating: "k", count: 256), "v"], ["put", "app", "zz", "v", "--hex"],
                     ["put", "app", "", "v"], ["init", t.path("x"), "--page-size", "3000"],
                     ["init", t.path("y"), "--log-file-size", "1KiB"], ["scan", "app", "--limit", "-1"]] {
            r = try Binary.run(args + ["-i", i])
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
        }
        #expect(try Binary.run(["db", "create", "a/b", "-i", i]).status == 64)
        #expect(try Binary.run(["db", "create", "app", "-i", i]).status == 73)
        // Backup refusals through the binary.
        let dir = t.path("b")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", t.path("missing"), "-i", i]).status == 73)
        #expect(try Binary.run(["backup", dir, "--snapshot", "-i", i]).status == 64)
        #expect(try Binary.run(["backup", dir, "--atomic", "--incremental", "-i", i]).status == 64)
        r = try Binary.run(["backup", dir, "--incremental", "-i", i])
        #expect(r.status == 78 && r.stderr.contains("JET_errMissingFullBackup (-560)"))
        r = try Binary.run(["backup", dir, "--json", "-i", i])
        #expect(r.status == 0 && json(r.stdout)["result"] as? String == "ok")
        #expect(try Binary.run(["backup", dir, "-i", i]).status == 73)
        r = try Binary.run(["info", "-i", dir])
        #expect(r.status == 65 && r.stderr.contains("JET_errSoftRecoveryOnBackupDatabase (-544)"))
        r = try Binary.run(["restore", dir, "--to", i])
        #expect(r.status == 73)
        r = try Binary.run(["restore", dir, "--to", t.path("r"), "--json"])
        #expect(r.status == 0 && json(r.stdout)["result"] as? String == "ok")
        #expect(try Binary.run(["verify", dir]).status == 0)
        r = try Binary.run(["show", dir, "--json"])
        #expect((json(r.stdout)["chain"] as? [Any])?.count == 1)
        // A damaged instance.json: a clear error, not a trap.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: i + "/instance.json"))
        r = try Binary.run(["info", "-i", i])
        #expect(r.status == 64 && r.stderr.contains("instance.json"))
        // Logging off: backup refused with 78.
        let nl = t.path("nolog")
        try Binary.run(["init", nl, "--no-logging"])
        try Binary.run(["load", "a", "--records", "10", "-i", nl])
        r = try Binary.run(["backup", "-i", nl])
        #expect(r.status == 78 && r.stderr.contains("JET_errLoggingDisabled (-516)"))
    }

    /// A holder that does not serve (here this process, opted out of the control socket):
    /// a second process is refused naming it. One that serves (`load`) runs the command.
    @Test func secondProcessIsRefusedNamingTheHolder() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        let inst = try Instance.open(at: i, owner: "pid \(getpid()) (jetbackup load app)", serveControl: false)
        let r = try Binary.run(["info", "-i", i])
        #expect(r.status == 75)
        #expect(r.stderr.contains("pid \(getpid())") && r.stderr.contains("load"), "\(r.stderr)")
        try inst.close()
        let holder = try Binary.start(["load", "app", "--records", "400000", "--batch", "50", "-i", i])
        defer { holder.terminate(); holder.waitUntilExit() }
        var served = Binary.Result(status: 0, stdout: "", stderr: "")
        for _ in 0..<100 {
            usleep(20_000)
            served = try Binary.run(["info", "-i", i])
            if FileManager.default.fileExists(atPath: i + "/control.sock") && served.status == 0 { break }
        }
        #expect(served.status == 0 && served.stdout.contains("Instance: \(i)"), "\(served.stderr)")
        // A lock left by a killed process blocks nobody.
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        #expect(try Binary.run(["info", "-i", i]).status == 0)
    }

    /// Where `backup` may not write, through the binary: inside the instance (73), over another
    /// instance's atomic set (73 unless --replace-foreign), an incremental after `db create`
    /// (78 naming the database) or into a damaged set (65, nothing copied or truncated).
    @Test func backupDestinationRefusals() throws {
        let t = Temp()
        let i1 = t.path("i1"), i2 = t.path("i2")
        for (k, i) in [i1, i2].enumerated() {
            try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
            try Binary.run(["load", "app", "--records", "1500", "--seed", String(k + 1), "-i", i])
        }
        try FileManager.default.createDirectory(atPath: i1 + "/sub", withIntermediateDirectories: false)
        for dir in [i1 + "/sub", i1, t.root] {
            let r = try Binary.run(["backup", dir, "-i", i1])
            #expect(r.status == 73 && r.stderr.contains("JET_errInvalidPath (-1023)") && r.stderr.contains("outside the instance"), "\(dir): \(r.stderr)")
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: i1 + "/sub")) ?? ["x"]).isEmpty)
        // Another instance's atomic set.
        let a = t.path("a")
        try FileManager.default.createDirectory(atPath: a, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", a, "--atomic", "-i", i1]).status == 0)
        var r = try Binary.run(["backup", a, "--atomic", "-i", i2])
        #expect(r.status == 73 && r.stderr.contains("JET_errBackupDirectoryNotEmpty (-504)") && r.stderr.contains("another instance"), "\(r.stderr)")
        #expect(try Binary.run(["backup", a, "--replace-foreign", "-i", i2]).status == 64)
        r = try Binary.run(["backup", a, "--atomic", "--replace-foreign", "-i", i2])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Binary.run(["restore", a, "--to", t.path("r2")]).status == 0)
        #expect(try Binary.run(["digest", "-i", t.path("r2")]).stdout == Binary.run(["digest", "-i", i2]).stdout)
        // An incremental after `db create` names the new database.
        let s = t.path("s")
        try FileManager.default.createDirectory(atPath: s, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", s, "-i", i1]).status == 0)
        try Binary.run(["db", "create", "fresh", "-i", i1])
        r = try Binary.run(["backup", s, "--incremental", "-i", i1])
        #expect(r.status == 78 && r.stderr.contains("JET_errMissingFullBackup (-560)") && r.stderr.contains("database fresh"), "\(r.stderr)")
        // An incremental into a damaged set: 65, the set and the instance's logs untouched.
        try Binary.run(["load", "app", "--records", "1500", "--seed", "9", "-i", i2])
        let d = t.path("d")
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false)
        #expect(try Binary.run(["backup", d, "-i", i2]).status == 0)
        try Binary.run(["load", "app", "--records", "1500", "--seed", "10", "-i", i2])
        try FileManager.default.removeItem(atPath: d + "/app.edb")
        let logs = try Binary.run(["logs", "--json", "-i", i2]).stdout
        let set = try FileManager.default.contentsOfDirectory(atPath: d).sorted()
        r = try Binary.run(["backup", d, "--incremental", "-i", i2])
        #expect(r.status == 65 && r.stderr.contains("app.edb") && r.stderr.contains("missing"), "\(r.status) \(r.stderr)")
        #expect(try Binary.run(["logs", "--json", "-i", i2]).stdout == logs)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d).sorted() == set)
    }

    /// A read-only destination is a bad destination (73, "permission denied"), not an I/O
    /// error (74): a read-only file system, and a directory the user may not write.
    @Test func readOnlyDestinationIsABadPath() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["load", "app", "--records", "500", "-i", i])
        let mnt = t.path("ro")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: false)
        if Self.system("/bin/mount", ["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", mnt]) == 0 {
            defer { _ = Self.system("/bin/umount", [mnt]) }
            let r = try Binary.run(["backup", mnt, "-i", i])
            #expect(r.status == 73 && r.stderr.contains("JET_errInvalidPath (-1023)") && r.stderr.contains("permission denied"), "\(r.status) \(r.stderr)")
            #expect(try Binary.run(["info", "--json", "-i", i]).stdout.contains("\"fullPrev\":null"))
        } else {
            print("skipped: mount of a read-only tmpfs was refused here")
        }
        // As an unprivileged user (root writes anywhere), into a directory mode 0555.
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
            print("skipped: the unprivileged part needs root and setpriv"); return
        }
        let home = t.path("nobody")
        try FileManager.default.createDirectory(atPath: home + "/ro", withIntermediateDirectories: true)
        _ = Self.system("/bin/chmod", ["0755", t.root])
        _ = Self.system("/bin/chown", ["-R", "65534:65534", home])
        _ = Self.system("/bin/chmod", ["0555", home + "/ro"])
        let asNobody = ["--reuid", "65534", "--regid", "65534", "--clear-groups", Binary.path]
        #expect(Self.system("/usr/bin/setpriv", asNobody + ["init", home + "/inst", "--page-size", "4KiB"]) == 0)
        #expect(Self.system("/usr/bin/setpriv", asNobody + ["load", "app", "--records", "100", "-i", home + "/inst"]) == 0)
        let err = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        p.arguments = asNobody + ["backup", home + "/ro", "-i", home + "/inst"]
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 73 && text.contains("permission denied") && text.contains(home + "/ro"), "\(p.terminationStatus) \(text)")
    }

    static func system(_ tool: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    /// A damaged page or log generation: `check` exits 65 naming it, and opening fails with
    /// the ESE error rather than returning wrong data.
    @Test func damageIsFoundByCheckAndOnOpen() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["load", "app", "--records", "3000", "-i", i])
        try Binary.run(["config", "checkpoint-depth", "64KiB", "-i", i])
        try Binary.run(["load", "app", "--records", "10", "--seed", "2", "-i", i])
        var r = try Binary.run(["check", "-i", i])
        #expect(r.status == 0)
        let db = i + "/app.edb"
        let h = FileHandle(forUpdatingAtPath: db)!
        try h.seek(toOffset: 7 * 4096 + 1000)
        let b = h.readData(ofLength: 1)[0]
        try h.seek(toOffset: 7 * 4096 + 1000)
        h.write(Data([b ^ 0xFF]))
        try h.close()
        r = try Binary.run(["check", "-i", i])
        #expect(r.status == 65 && r.stderr.contains("page 7") && r.stderr.contains("app.edb"))
        r = try Binary.run(["digest", "-i", i])
        #expect(r.status == 65 && r.stderr.contains("JET_errReadVerifyFailure (-1018)"), "\(r.stderr)")
        // A log generation.
        let gens = ((try? FileManager.default.contentsOfDirectory(atPath: i)) ?? []).filter { FileNames.parseArchivedLog($0) != nil }.sorted()
        let g = i + "/" + gens[gens.count / 2]
        let lh = FileHandle(forUpdatingAtPath: g)!
        try lh.seek(toOffset: 5000)
        lh.write(Data([0x55, 0xAA]))
        try lh.close()
        r = try Binary.run(["check", "--json", "-i", i])
        #expect(r.status == 65 && (json(r.stdout)["generationsBad"] as? Int) == 1)
    }
}
