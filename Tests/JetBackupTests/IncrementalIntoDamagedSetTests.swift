import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// An incremental into a damaged set used to succeed and truncate the logs that could have
/// repaired it. Each damage is refused with an exit-65 error before anything is written:
/// the set byte for byte as it was, headers unchanged, no log truncated.
@Suite struct IncrementalIntoDamagedSetTests {
    /// The damages, each applied to a copy of the set (`dir` holds the set's files).
    static let damages: [(String, @Sendable (String, BackupManifest) throws -> Void)] = [
        ("missing image", { d, _ in try FileManager.default.removeItem(atPath: d + "/app.edb") }),
        ("truncated image", { d, _ in try truncate(d + "/app.edb", by: 4096) }),
        ("flipped page 0 of the image", { d, _ in flipByte(d + "/app.edb", at: 200) }),
        ("flipped page 1 of the image", { d, _ in flipByte(d + "/app.edb", at: 4096 + 200) }),
        ("image replaced by a directory", { d, _ in
            try FileManager.default.removeItem(atPath: d + "/app.edb")
            try FileManager.default.createDirectory(atPath: d + "/app.edb", withIntermediateDirectories: false)
        }),
        ("flipped log header", { d, m in flipByte(d + "/" + plainLogs(m)[1].name, at: 20) }),
        ("flipped log record", { d, m in flipByte(d + "/" + plainLogs(m)[1].name, at: 9000) }),
        ("flipped newest (compressed) log", { d, m in
            let f = m.files.filter { $0.kind == .log }.max { $0.generation! < $1.generation! }!
            flipByte(d + "/" + f.name, at: Int(f.size / 2))
        }),
        ("swapped logs", { d, m in
            let a = d + "/" + plainLogs(m)[1].name, b = d + "/" + plainLogs(m)[2].name
            try FileManager.default.moveItem(atPath: a, toPath: d + "/tmp-swap")
            try FileManager.default.moveItem(atPath: b, toPath: a)
            try FileManager.default.moveItem(atPath: d + "/tmp-swap", toPath: b)
        }),
        ("missing log", { d, m in try FileManager.default.removeItem(atPath: d + "/" + plainLogs(m)[1].name) }),
        ("truncated log", { d, m in try truncate(d + "/" + plainLogs(m)[2].name, by: 512) }),
        ("log replaced by a symbolic link", { d, m in
            let p = d + "/" + plainLogs(m)[1].name
            try FileManager.default.moveItem(atPath: p, toPath: d + "/elsewhere")
            try FileManager.default.createSymbolicLink(atPath: p, withDestinationPath: d + "/elsewhere")
        }),
        ("garbage line in SHA256SUMS", { d, _ in try append(d + "/SHA256SUMS", "garbage\n") }),
        ("extra file in SHA256SUMS", { d, _ in try append(d + "/SHA256SUMS", String(repeating: "ab", count: 32) + "  extra.edb\n") }),
        ("changed sum in SHA256SUMS", { d, _ in
            let p = d + "/SHA256SUMS"
            var t = try String(contentsOfFile: p, encoding: .utf8)
            t = (t.first == "0" ? "1" : "0") + t.dropFirst()
            try t.write(toFile: p, atomically: false, encoding: .utf8)
        }),
        ("missing SHA256SUMS", { d, _ in try FileManager.default.removeItem(atPath: d + "/SHA256SUMS") }),
        ("stray log not in the manifest", { d, m in
            let last = m.files.filter { $0.kind == .log }.compactMap(\.generation).max()!
            try FileManager.default.copyItem(atPath: d + "/" + plainLogs(m)[1].name, toPath: d + "/" + FileNames.archivedLog(last + 5))
        }),
    ]

    static func plainLogs(_ m: BackupManifest) -> [BackupManifest.File] {
        m.files.filter { $0.kind == .log && $0.rawSize == nil }.sorted { $0.generation! < $1.generation! }
    }

    static func truncate(_ p: String, by n: Int) throws {
        let size = try #require(try FileManager.default.attributesOfItem(atPath: p)[.size] as? NSNumber).intValue
        let h = try #require(FileHandle(forUpdatingAtPath: p))
        try h.truncate(atOffset: UInt64(size - n))
        try h.close()
    }

    static func append(_ p: String, _ text: String) throws {
        let h = try #require(FileHandle(forUpdatingAtPath: p))
        try h.seekToEnd()
        h.write(Data(text.utf8))
        try h.close()
    }

    @Test func everyDamageIsRefusedAndNothingChanges() throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.checkpointDepth = 4 << 20 }
        let inst = try open(ip)
        // A set with a full, an uncompressed incremental (several logs) and a compressed one.
        try load(inst, count: 1500)
        let set = s.mkdir("set")
        _ = try backup(inst, set)
        try load(inst, from: 1500, count: 2500)
        _ = try backup(inst, set, incremental: true)
        try load(inst, from: 4000, count: 800)
        _ = try backup(inst, set, incremental: true, level: 3)
        try load(inst, from: 4800, count: 800)
        let m = try SetVerifier().manifest(in: set).1
        #expect(Self.plainLogs(m).count >= 3, "the set needs three uncompressed logs for these damages")
        let headersBefore = try DestinationTests.record(ip)
        // Each damage to a plain set and, for some, to new/ of an atomic set.
        var cases: [(String, String, String)] = []
        for (k, (name, damage)) in Self.damages.enumerated() {
            let dir = s.path("plain\(k)")
            try FileManager.default.copyItem(atPath: set, toPath: dir)
            try damage(dir, m)
            cases.append((name, dir, dir))
        }
        for (k, (name, damage)) in Self.damages.enumerated() where [0, 5, 8, 12].contains(k) {
            let dir = s.mkdir("atomic\(k)")
            try FileManager.default.copyItem(atPath: set, toPath: dir + "/new")
            try damage(dir + "/new", m)
            cases.append(("atomic set: " + name, dir, dir + "/new"))
        }
        for (name, dir, _) in cases {
            let before = snapshotTree(dir)
            do {
                _ = try backup(inst, dir, incremental: true)
                Issue.record("\(name): the incremental into the damaged set succeeded")
            } catch let e as JetError {
                #expect(ReliabilityTests.damageCodes.contains(e.code), "\(name): \(e)")
            }
            #expect(snapshotTree(dir) == before, "\(name): the set changed")
            #expect(try DestinationTests.record(ip) == headersBefore, "\(name): headers changed or logs were truncated")
        }
        // The same set undamaged is extended: the refusals above were the damage's.
        let good = s.path("good")
        try FileManager.default.copyItem(atPath: set, toPath: good)
        let sum = try backup(inst, good, incremental: true)
        #expect(sum.generationsTruncated != nil)
        let want = try digest(inst)
        try inst.close()
        _ = try restore(good, s.path("r"))
        #expect(try digest(s.path("r")) == want)
    }
}
