import Foundation
import Testing
@testable import JetStore

/// What the binary writes on standard output, and what happens when it cannot: a full disk is
/// a failed command (74), a reader that went away ends it as it ends `cat`; keys and values as
/// text are one line per record and give back their exact bytes; negative numbers get the
/// range error of their option.
@Suite struct OutputErrorTests {
    /// Runs the binary with standard output on /dev/full (every write fails with ENOSPC).
    static func toFullDisk(_ args: [String]) throws -> Binary.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binary.path)
        p.arguments = args
        guard let full = FileHandle(forWritingAtPath: "/dev/full") else { throw JetError(.fileNotFound, "/dev/full") }
        defer { try? full.close() }
        let err = Pipe()
        p.standardOutput = full
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return Binary.Result(status: status, stdout: "", stderr: String(decoding: e, as: UTF8.self))
    }

    /// An instance with a database of 3,000 records and a full backup set.
    static func instanceWithSet(_ t: Temp) throws -> (String, String) {
        let i = t.path("inst"), set = t.path("set")
        try Binary.run(["init", i, "--page-size", "4KiB", "--log-file-size", "64KiB"])
        try Binary.run(["load", "app", "--records", "3000", "-i", i])
        try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: false)
        let r = try Binary.run(["backup", set, "-i", i])
        #expect(r.status == 0, "\(r.stderr)")
        return (i, set)
    }

    @Test func everyReportWrittenToAFullDiskFailsWithDiskFull() throws {
        let t = Temp()
        let (i, set) = try Self.instanceWithSet(t)
        let before = try Binary.run(["digest", "-i", i]).stdout
        let key = String(try Binary.run(["scan", "app", "--limit", "1", "-i", i]).stdout.prefix { $0 != "\t" })
        #expect(key.count == 16)
        let commands: [[String]] = [
            ["scan", "app"], ["scan", "app", "--json"], ["scan", "app", "--hex"], ["get", "app", key], ["get", "app", key, "--json"],
            ["digest"], ["digest", "--json"], ["logs"], ["logs", "--json"], ["info"], ["info", "--json"], ["events"],
            ["config"], ["config", "page-size"], ["db", "list"], ["check"], ["check", "--json"],
            ["show", set], ["show", set, "--json"], ["verify", set], ["verify", set, "--json"], ["--help"], ["--version"],
        ]
        for args in commands {
            let full = args.contains("show") || args.contains("verify") || args.first == "--help" || args.first == "--version"
                ? args : args + ["-i", i]
            let r = try Self.toFullDisk(full)
            #expect(r.status == 74, "\(args): exit \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("jetbackup: JET_errDiskFull (-1808): could not write to standard output"), "\(args): \(r.stderr)")
        }
        // A command that changes something does it, and still says its report was lost.
        let r = try Self.toFullDisk(["put", "app", "k", "v", "--json", "-i", i])
        #expect(r.status == 74 && r.stderr.contains("JET_errDiskFull"), "\(r.stderr)")
        #expect(try Binary.run(["get", "app", "k", "-i", i]).stdout == "v\n")
        // Reading commands left the instance as it was, closed cleanly.
        #expect(try Binary.run(["delete", "app", "k", "-i", i]).status == 0)
        #expect(try Binary.run(["digest", "-i", i]).stdout == before)
        #expect(try Binary.run(["check", "-i", i]).status == 0)
    }

    /// `load --progress commits` stops at the first line it cannot write: its commits so far are
    /// durable and the instance opens.
    @Test func loadStopsWhenItsProgressCannotBeWritten() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        let r = try Self.toFullDisk(["load", "app", "--records", "100000", "--batch", "10", "--progress", "commits", "-i", i])
        #expect(r.status == 74 && r.stderr.contains("JET_errDiskFull"), "\(r.stderr)")
        let d = try Binary.run(["digest", "--json", "-i", i])
        let n = json(d.stdout)["records"] as? Int ?? -1
        #expect(d.status == 0 && n >= 10 && n < 100000, "loaded \(n) records")
    }

    /// `scan | head -1`: the reader goes away; the command ends as `cat` does, killed by SIGPIPE
    /// (141 in the shell), with nothing on stderr; also when the shell ignores SIGPIPE (a writer
    /// that ignored EPIPE exited 0 there, as if all had been delivered). The instance is left
    /// closed cleanly.
    @Test func aClosedPipeEndsTheCommandLikeCat() throws {
        guard FileManager.default.isExecutableFile(atPath: "/bin/bash") else {
            print("skipped: /bin/bash not found")
            return
        }
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["load", "app", "--records", "20000", "-i", i])
        for trap in ["", "trap '' PIPE; "] {
            for cmd in ["scan app", "scan app --hex", "events --limit 100000", "logs"] {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/bash")
                p.arguments = ["-c", "\(trap)\"$0\" \(cmd) -i \"$1\" | head -c 10 >/dev/null; echo \"${PIPESTATUS[0]}\"", Binary.path, i]
                let out = Pipe(), err = Pipe()
                p.standardOutput = out
                p.standardError = err
                try p.run()
                let o = out.fileHandleForReading.readDataToEndOfFile()
                let e = err.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                let status = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                // logs and events may fit in the pipe before head exits: then they end normally.
                let expected: Set<String> = cmd.hasPrefix("scan") ? ["141"] : ["141", "0"]
                #expect(expected.contains(status), "\(trap)\(cmd): status \(status)")
                #expect(e.isEmpty, "\(trap)\(cmd): \(String(decoding: e, as: UTF8.self))")
            }
        }
        let r = try Binary.run(["info", "--json", "-i", i])
        #expect((json(r.stdout)["databases"] as? [[String: Any]])?.first?["state"] as? String == "clean shutdown")
    }

    /// Keys and values with tabs, newlines, backslashes, control bytes and bytes that are not
    /// UTF-8: `scan` prints one line per record, and its text fed to `put --escaped` rebuilds
    /// exactly the same records. `--json` gives the exact text or, for non-UTF-8 bytes, hex.
    @Test func scanTextIsOneLinePerRecordAndRoundTrips() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        try Binary.run(["db", "create", "app", "-i", i])
        try Binary.run(["db", "create", "copy", "-i", i])
        let records: [(String, String)] = [
            ("610962", "6c696e65310a6c696e6532"),       // a\tb -> line1\nline2
            ("6261636b5c736c617368", "5c783431"),       // back\slash -> \x41 literally
            ("fffe", "00017f"),                          // not UTF-8 -> NUL, 0x01, DEL
            ("c3a9", "c3bc6ec3af636f6465"),              // é -> ünïcode
            ("63720d", ""),                              // cr\r -> empty
            ("e282", "f0"),                              // truncated UTF-8 sequences
        ]
        for (k, v) in records {
            let r = try Binary.run(["put", "app", k, v.isEmpty ? "-" : v, "--hex", "-i", i], stdin: "")
            #expect(r.status == 0, "\(k): \(r.stderr)")
        }
        let scan = try Binary.run(["scan", "app", "-i", i])
        #expect(scan.status == 0)
        let lines = scan.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == records.count, "\(scan.stdout)")
        #expect(lines.allSatisfy { $0.split(separator: "\t", omittingEmptySubsequences: false).count == 2 })
        #expect(lines.contains("a\\tb\tline1\\nline2"))
        #expect(lines.contains("back\\\\slash\t\\\\x41"))
        #expect(lines.contains("\\xff\\xfe\t\\x00\\x01\\x7f"))
        #expect(lines.contains("é\tünïcode"))
        #expect(lines.contains("\\xe2\\x82\t\\xf0"))
        // Fed back, line by line, into another database: the same bytes.
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 2 else { continue }
            let r = try Binary.run(["put", "copy", f[0], f[1].isEmpty ? "-" : f[1], "--escaped", "-i", i], stdin: "")
            #expect(r.status == 0, "\(line): \(r.stderr)")
        }
        let a = try Binary.run(["scan", "app", "--hex", "-i", i]).stdout
        let b = try Binary.run(["scan", "copy", "--hex", "-i", i]).stdout
        #expect(a == b && a.split(separator: "\n").count == records.count)
        #expect(try Binary.run(["get", "app", "a\\tb", "--escaped", "-i", i]).stdout == "line1\\nline2\n")
        #expect(try Binary.run(["get", "app", "\\xff\\xfe", "--escaped", "--hex", "-i", i]).status == 64)
        #expect(try Binary.run(["get", "app", "a\\qb", "--escaped", "-i", i]).status == 64)
        // JSON: the exact text, or null and hex.
        let j = try Binary.run(["scan", "app", "--json", "-i", i])
        let recs = json(j.stdout)["records"] as? [[String: Any]] ?? []
        #expect(recs.count == records.count)
        #expect(recs.contains { $0["key"] as? String == "a\tb" && $0["value"] as? String == "line1\nline2" })
        #expect(recs.contains { $0["key"] is NSNull && $0["keyHex"] as? String == "fffe" && $0["value"] as? String == "\u{0}\u{1}\u{7f}" })
        #expect(recs.contains { $0["key"] is NSNull && $0["keyHex"] as? String == "e282" && $0["value"] is NSNull && $0["valueHex"] as? String == "f0" })
        let g = try Binary.run(["get", "app", "fffe", "--hex", "--json", "-i", i])
        #expect(json(g.stdout)["value"] as? String == "00017f")
        let g2 = try Binary.run(["get", "app", "e282", "--hex", "-i", i])
        #expect(g2.stdout == "f0\n")
    }

    /// `--log-file-size -1` was taken for a missing value (the parser read `-1` as a flag): every
    /// numeric option now gets the value and refuses it with its range, exit 64.
    @Test func negativeNumbersGetTheRangeErrorNotMissingValue() throws {
        let t = Temp()
        let i = t.path("inst")
        try Binary.run(["init", i])
        let cases: [([String], String)] = [
            (["init", t.path("a"), "--log-file-size", "-1"], "'-1' is invalid for '--log-file-size"),
            (["init", t.path("b"), "--page-size", "-4096"], "'-4096' is invalid for '--page-size"),
            (["load", "app", "--records", "-5", "-i", i], "--records must be 0 or more"),
            (["load", "app", "--records", "5", "--value-size", "-1", "-i", i], "--value-size must be 0 to"),
            (["load", "app", "--records", "5", "--batch", "-1", "-i", i], "--batch must be at least 1"),
            (["load", "app", "--records", "5", "--update-ratio", "-0.5", "-i", i], "--update-ratio must be between 0 and 1"),
            (["load", "app", "--records", "5", "--seed", "-1", "-i", i], "'-1' is invalid for '--seed"),
            (["scan", "app", "--limit", "-1", "-i", i], "--limit must be 0 or more"),
            (["events", "--limit", "-1", "-i", i], "--limit must be 0 or more"),
        ]
        for (args, message) in cases {
            let r = try Binary.run(args)
            #expect(r.status == 64, "\(args): \(r.status)")
            #expect(r.stderr.contains(message) && !r.stderr.contains("Missing value"), "\(args): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("a")) && !FileManager.default.fileExists(atPath: t.path("b")))
        #expect(try Binary.run(["digest", "--json", "-i", i]).stdout.contains("\"records\":0"))
    }
}
