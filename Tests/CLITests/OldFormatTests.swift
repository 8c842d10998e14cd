import Foundation
import Testing

/// What a user of the command line is told about an instance written with an earlier log
/// format (Fixtures/instance-format3: page images): every command that opens it, and a backup
/// of it, exits 65 with JET_errLogReadVerifyFailure naming the file, the versions and what to
/// do, and leaves every file as it was.
@Suite struct OldFormatTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/instance-format3").path

    static func contents(_ dir: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name != "LOCK" && name != "events.log" {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        return out
    }

    @Test func anInstanceOfLogFormat3IsRefusedByEveryCommandThatOpensIt() throws {
        let t = Temp()
        let inst = t.path("inst")
        try FileManager.default.copyItem(atPath: Self.fixture, toPath: inst)
        let before = try Self.contents(inst)
        for args in [["get", "app", "k"], ["scan", "app"], ["check"], ["backup", t.path("set")], ["load", "app", "--records", "10"]] {
            let r = try Binary.run(args + ["-i", inst])
            #expect(r.status == 65, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("JET_errLogReadVerifyFailure (-612)") && r.stderr.contains("log format version 3")
                    && r.stderr.contains("written by an earlier jetbackup: read it with that version"), "\(args): \(r.stderr)")
            #expect(try Self.contents(inst) == before, "\(args) changed the instance")
        }
        #expect(!FileManager.default.fileExists(atPath: t.path("set") + "/MANIFEST.json"))
    }
}
