import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Fixtures/ pins the on-disk formats: an instance and a backup set made by
/// scripts/make-fixtures.sh, with their expected digests. A change that cannot read them
/// fails here.
@Suite struct FixtureTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func expected(_ name: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + name + ".digest")), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The instance as this version writes it (log format 5) and as the release before wrote
    /// it (format 4): both check, hold their digest's content, and take new work.
    @Test(arguments: [("instance", UInt32(5)), ("instance-format4", 4)])
    func openFixtureInstance(name: String, logFormat: UInt32) throws {
        let s = Scratch()
        let copy = s.path("instance")
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + name, toPath: copy)
        #expect(try Self.logVersions(copy).filter { $0.name == FileNames.currentLog }.map(\.version) == [logFormat])
        let r = try Inspection.check(copy, fs: PosixFileSystem(), parameters: try Instance.readParameters(at: copy))
        #expect(r.ok, "\(r.problems)")
        #expect(try digest(copy) == Self.expected(name))
        // And it takes new work, in format 5 (a format 4 generation is finished at the first
        // open, not continued), splits named by their old page among it, and all of it reads
        // back after a reopen.
        var inst = try open(copy)
        var added: [[UInt8]: [UInt8]] = [:]
        for b in 0..<40 {
            var batch: [Mutation] = []
            for j in 0..<25 {
                let k = Array(String(format: "fixture-%08x", (b * 25 + j) &* 2_654_435_761 & 0xFFFF_FFFF).utf8)
                let v = [UInt8](repeating: UInt8(truncatingIfNeeded: b &+ j), count: 200)
                batch.append(.put(database: "notes", key: k, value: v))
                added[k] = v
            }
            try inst.commit(batch)
        }
        try inst.close()
        inst = try open(copy)
        for (k, v) in added { #expect(try inst.get("notes", k) == v) }
        try inst.close()
        let versions = try Self.logVersions(copy)
        #expect(versions.filter { $0.version == 4 }.count == (logFormat == 4 ? 1 : 0), "\(versions)")
        #expect(versions.contains { $0.version == 5 && $0.name == FileNames.currentLog })
        #expect(try digest(copy) != Self.expected(name))
    }

    /// The log format version of each generation file in `dir` (its header's third word).
    static func logVersions(_ dir: String) throws -> [(version: UInt32, name: String)] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("edb") && $0.hasSuffix(".log") }
            .map { name in (try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)).withUnsafeBytes { $0.u32(8) }, name) }
    }

    /// An instance whose log is format 3 (page images; the release before this one) is refused
    /// by name and version, and left exactly as it was.
    @Test func instanceWithLogFormat3IsRefusedWithAClearErrorAndLeftAsItWas() throws {
        let s = Scratch()
        let copy = s.path("instance")
        try FileManager.default.copyItem(atPath: Self.fixtures + "/instance-format3", toPath: copy)
        let fs = PosixFileSystem()
        let names = try fs.list(copy).filter { $0 != "LOCK" }
        let before = try names.map { try fs.readAll(copy + "/" + $0) }
        do {
            let inst = try open(copy)
            try? inst.close()
            Issue.record("an instance with a format 3 log was opened")
        } catch let e as JetError {
            #expect(e.code == .logReadVerifyFailure)
            #expect(e.message.contains("has log format version 3, this jetbackup reads 4 to 5; it was written by an earlier jetbackup"), "\(e.message)")
        }
        #expect(try fs.list(copy).filter { $0 != "LOCK" } == names)
        #expect(try names.map { try fs.readAll(copy + "/" + $0) } == before)
    }

    /// A set as this version writes it (manifest format 2, sealed; log format 5) and as the
    /// release before wrote it (manifest format 1 without a checksum, log format 4): both
    /// verify and restore to their digest's content.
    @Test(arguments: [("backupset", 2, UInt32(5)), ("backupset-format4", 1, 4)])
    func restoreFixtureBackupSet(name: String, manifestFormat: Int, logFormat: UInt32) throws {
        let s = Scratch()
        let set = s.path("set")
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + name, toPath: set)
        let m = try SetVerifier().manifest(in: set).1
        #expect(m.chain.count == 3 && m.chain[2].compression.hasPrefix("zstd"))
        #expect(m.formatVersion == manifestFormat && (m.checksum != nil) == (manifestFormat >= 2))
        #expect(try Self.logVersions(set).map(\.version) == [logFormat, logFormat])
        _ = try SetVerifier().verify(set)
        _ = try restore(set, s.path("r"))
        #expect(try digest(s.path("r")) == Self.expected(name))
    }
}
