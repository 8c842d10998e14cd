import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The corruption matrix of the restore issue, crafted manifests, and TARGET rules.
@Suite struct RestoreTests {
    /// A set with a full and two incrementals (the second compressed), and the digest it
    /// restores to.
    static func makeSet(_ s: Scratch) throws -> (dir: String, digest: String, instance: String) {
        let ip = try s.makeInstance { $0.checkpointDepth = 4 << 20 }
        let inst = try open(ip)
        try load(inst, count: 1500)
        try load(inst, "other", count: 300, seed: 3)
        let dir = s.mkdir("set")
        try inst.flushCheckpoint() // data pages on disk, so the image has pages to damage
        _ = try backup(inst, dir)
        try load(inst, from: 1500, count: 400)
        _ = try backup(inst, dir, incremental: true)
        try load(inst, from: 1900, count: 400)
        _ = try backup(inst, dir, incremental: true, level: 3)
        let d = try digest(inst)
        try inst.close()
        return (dir, d, ip)
    }

    enum Damage: String, CaseIterable {
        case manifest, manifestTruncated, sums, imageHeader, dataPage, logHeader, logRecord, compressedLog
        case missingGeneration, foreignGeneration, truncatedImage, truncatedLog, swappedGeneration
    }

    static func damage(_ d: Damage, _ dir: String, ip: String, s: Scratch) throws -> JetError.Code {
        let m = try SetVerifier().manifest(in: dir).1
        let logs = m.files.filter { $0.kind == .log && $0.rawSize == nil }.sorted { $0.generation! < $1.generation! }
        let zst = m.files.first { $0.name.hasSuffix(".zst") }!
        switch d {
        case .manifest:
            flipByte(dir + "/MANIFEST.json", at: 40, mask: 0x01)
            return .databaseCorrupted
        case .manifestTruncated:
            let data = FileManager.default.contents(atPath: dir + "/MANIFEST.json")!
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir + "/MANIFEST.json"))
            return .databaseCorrupted
        case .sums:
            flipByte(dir + "/SHA256SUMS", at: 3, mask: 0x01)
            return .databaseCorrupted
        case .imageHeader:
            flipByte(dir + "/app.edb", at: 200)
            return .readVerifyFailure
        case .dataPage:
            flipByte(dir + "/app.edb", at: 4 * 4096 + 3000)
            return .readVerifyFailure
        case .logHeader:
            flipByte(dir + "/" + logs[0].name, at: 20)
            return .logReadVerifyFailure
        case .logRecord:
            flipByte(dir + "/" + logs[logs.count - 1].name, at: 4096 + 30)
            return .logReadVerifyFailure
        case .compressedLog:
            flipByte(dir + "/" + zst.name, at: zst.size > 200 ? 100 : 10)
            return .logReadVerifyFailure
        case .missingGeneration:
            try FileManager.default.removeItem(atPath: dir + "/" + logs[1].name)
            return .missingLogFile
        case .foreignGeneration:
            // An extra generation of another instance dropped into the set.
            let other = try s.makeInstance("foreign")
            let o = try open(other)
            try load(o, count: 2500)
            try o.close()
            let g = generations(other).first!
            try FileManager.default.copyItem(atPath: other + "/" + FileNames.archivedLog(g), toPath: dir + "/" + FileNames.archivedLog(m.lastGeneration + 1))
            return .givenLogFileHasBadSignature
        case .truncatedImage:
            let h = FileHandle(forWritingAtPath: dir + "/other.edb")!
            try h.truncate(atOffset: 4096 * 3)
            try h.close()
            return .readVerifyFailure
        case .truncatedLog:
            let h = FileHandle(forWritingAtPath: dir + "/" + logs[0].name)!
            try h.truncate(atOffset: 10000)
            try h.close()
            return .logReadVerifyFailure
        case .swappedGeneration:
            // A generation replaced by one of another instance, manifest and sums updated to match:
            // only the log signature check can catch it.
            let other = try s.makeInstance("foreign2")
            let o = try open(other)
            try load(o, count: 2500)
            try o.close()
            let victim = logs[0]
            let src = other + "/" + FileNames.archivedLog(generations(other).first!)
            try FileManager.default.removeItem(atPath: dir + "/" + victim.name)
            try FileManager.default.copyItem(atPath: src, toPath: dir + "/" + victim.name)
            var mm = m
            let bytes = [UInt8](FileManager.default.contents(atPath: src)!)
            let i = mm.files.firstIndex { $0.name == victim.name }!
            mm.files[i].size = Int64(bytes.count)
            mm.files[i].crc32c = CRC32C.checksum(bytes)
            mm.files[i].sha256 = bytes.withUnsafeBytes { SHA256Hasher.hex($0) }
            try Data(mm.encoded()).write(to: URL(fileURLWithPath: dir + "/MANIFEST.json"))
            try Data(mm.sha256sums()).write(to: URL(fileURLWithPath: dir + "/SHA256SUMS"))
            return .givenLogFileHasBadSignature
        }
    }

    @Test(arguments: Damage.allCases)
    func corruptionMatrix(damage: Damage) throws {
        let s = Scratch()
        let (dir, _, ip) = try Self.makeSet(s)
        let expected = try Self.damage(damage, dir, ip: ip, s: s)
        expectJetError(expected) { _ = try SetVerifier().verify(dir) }
        let target = s.path("target")
        expectJetError(expected) { _ = try restore(dir, target) }
        #expect(!FileManager.default.fileExists(atPath: target), "TARGET holds something of a failed restore")
        // An existing empty TARGET stays empty.
        let empty = s.mkdir("empty-target")
        expectJetError(expected) { _ = try restore(dir, empty) }
        #expect(s.list(empty).isEmpty)
    }

    @Test func undamagedSetRestoresAndVerifies() throws {
        let s = Scratch()
        let (dir, d, _) = try Self.makeSet(s)
        let r = try SetVerifier().verify(dir)
        #expect(r.generations > 2 && r.databases == 2 && r.pages > 10)
        _ = try restore(dir, s.path("t"))
        #expect(try digest(s.path("t")) == d)
        // verify writes nothing.
        let before = snapshotTree(dir)
        _ = try SetVerifier().verify(dir)
        #expect(snapshotTree(dir) == before)
    }

    @Test func targetRules() throws {
        let s = Scratch()
        let (dir, _, ip) = try Self.makeSet(s)
        let full = s.mkdir("full")
        FileManager.default.createFile(atPath: full + "/x", contents: Data("keep".utf8))
        expectJetError(.invalidPath) { _ = try restore(dir, full) }
        #expect(s.list(full) == ["x"])
        // A backup set opened as an instance: the engine finds no instance there (the command
        // line, which knows sets, says it is one).
        expectJetError(.fileNotFound) { _ = try open(dir) }
        // A restore in progress refuses other commands with -506.
        let t = s.mkdir("busy")
        FileManager.default.createFile(atPath: t + "/" + FileNames.restoreMarker, contents: Data())
        expectJetError(.restoreInProgress) { _ = try open(t) }
        expectJetError(.restoreInProgress) { _ = try restore(dir, t) }
        _ = ip
    }

    @Test func craftedManifestsAreRefused() throws {
        let s = Scratch()
        let (dir, _, _) = try Self.makeSet(s)
        let original = FileManager.default.contents(atPath: dir + "/MANIFEST.json")!
        let json = String(decoding: original, as: UTF8.self)
        let logName = try SetVerifier().manifest(in: dir).1.files.first { $0.kind == .log }!.name
        let cases: [(String, String)] = [
            ("traversal", json.replacingOccurrences(of: "\"app.edb\"", with: "\"../app.edb\"")),
            ("absolute", json.replacingOccurrences(of: "\"app.edb\"", with: "\"/etc/passwd\"")),
            ("duplicate", json.replacingOccurrences(of: "\"\(logName)\"", with: "\"app.edb\"")),
            ("hugeSize", json.replacingOccurrences(of: "\"size\" : ", with: "\"size\" : 99999999999999999")),
            ("negative", json.replacingOccurrences(of: "\"pages\" : ", with: "\"pages\" : -")),
            ("wrongType", json.replacingOccurrences(of: "\"pageSize\" : 4096", with: "\"pageSize\" : \"big\"")),
        ]
        for (name, text) in cases {
            #expect(text != json, "case \(name) did not change the manifest")
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/MANIFEST.json"))
            let target = s.path("t-\(name)")
            do {
                _ = try restore(dir, target)
                Issue.record("crafted manifest \(name) restored")
            } catch let e as JetError {
                #expect([.databaseCorrupted, .readVerifyFailure, .logReadVerifyFailure].contains(e.code), "\(name): \(e)")
            }
            #expect(!FileManager.default.fileExists(atPath: target))
            #expect(!FileManager.default.fileExists(atPath: s.root + "/app.edb"))
        }
        try original.write(to: URL(fileURLWithPath: dir + "/MANIFEST.json"))
        // A symlink in place of a set file is refused, never followed.
        try FileManager.default.moveItem(atPath: dir + "/other.edb", toPath: s.root + "/elsewhere.edb")
        try FileManager.default.createSymbolicLink(atPath: dir + "/other.edb", withDestinationPath: s.root + "/elsewhere.edb")
        expectJetError(.readVerifyFailure) { _ = try restore(dir, s.path("t-link")) }
        expectJetError(.readVerifyFailure) { _ = try SetVerifier().verify(dir) }
    }

    /// An atomic set killed mid-swap (only old/) still restores.
    @Test func findsSetInOld() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 500)
        let dir = s.mkdir("a")
        _ = try backup(inst, dir, atomic: true)
        let d = try digest(inst)
        try inst.close()
        try FileManager.default.moveItem(atPath: dir + "/new", toPath: dir + "/old")
        _ = try SetVerifier().verify(dir)
        _ = try restore(dir, s.path("t"))
        #expect(try digest(s.path("t")) == d)
    }
}
