import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The command lines of `contrib/` run as written, with their paths pointed at a scratch instance
/// and repository: each must succeed.
@Suite(.serialized) struct ContribTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func text(_ name: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent("contrib/" + name), encoding: .utf8)
    }

    /// Runs a command line from a contrib file (no quoting in them: split on spaces).
    func run(_ line: String, _ e: RepositoryTests.Env) throws -> Binary.Result {
        var words = line.split(separator: " ").map(String.init)
        #expect(words.first == "jetbackup" || words.first == "/usr/bin/jetbackup", "\(line)")
        words.removeFirst()
        let args = words.map { w in
            w.replacingOccurrences(of: "/backups/db", with: e.repo)
                .replacingOccurrences(of: "/var/lib/prometheus/node-exporter", with: e.t.root)
        }
        return try Binary.run(args, env: ["JETBACKUP_INSTANCE": e.inst])
    }

    @Test func crontabLinesRun() throws {
        let e = try RepositoryTests.Env()
        try e.load(100, seed: 1)
        let lines = try text("jetbackup.crontab").split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && !$0.contains("=") }
        #expect(lines.count == 2)
        for l in lines {
            let command = l.split(separator: " ").dropFirst(5).joined(separator: " ")
            let r = try run(command, e)
            #expect(r.status == 0, "\(command): \(r.stderr)")
        }
        #expect(try e.sets().count == 1)
        #expect(FileManager.default.fileExists(atPath: e.t.path("jetbackup.prom")))
        #expect(try text("jetbackup.crontab").contains("JETBACKUP_INSTANCE=/srv/db"))
    }

    @Test func systemdUnitsRun() throws {
        let e = try RepositoryTests.Env()
        try e.load(100, seed: 1)
        let service = try text("jetbackup.service")
        #expect(service.contains("Type=oneshot") && service.contains("Environment=JETBACKUP_INSTANCE=/srv/db"))
        let execs = service.split(separator: "\n").filter { $0.hasPrefix("ExecStart") }.map { String($0.split(separator: "=", maxSplits: 1)[1]) }
        #expect(execs.count == 2)
        for x in execs {
            let r = try run(x, e)
            #expect(r.status == 0, "\(x): \(r.stderr)")
        }
        let timer = try text("jetbackup.timer")
        #expect(timer.contains("Persistent=true") && timer.contains("OnCalendar="))
        let status = try text("jetbackup-status.service").split(separator: "\n").first { $0.hasPrefix("ExecStart=") }
        let check = String(try #require(status).dropFirst("ExecStart=".count))
        #expect(try run(check, e).status == 0)
        e.now = "2099-01-01T00:00:00Z"
        let args: [String] = check.split(separator: " ").dropFirst().map { String($0).replacingOccurrences(of: "/backups/db", with: e.repo) }
        #expect(try e.run(args).status == 1)
    }
}
