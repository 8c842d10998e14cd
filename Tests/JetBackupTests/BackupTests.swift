import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

@Suite struct BackupTests {
    @Test func fullBackupRestoresAndRecordsHeadersAndTruncates() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 3000)
        try load(inst, "second", count: 500, seed: 7)
        let before = try digest(inst)
        let gensBefore = generations(ip)
        #expect(gensBefore.count > 2)
        let dir = s.mkdir("b")
        let sum = try backup(inst, dir)
        #expect(sum.databases == 2)
        #expect(sum.generationsCopied != nil)
        #expect(sum.generationsTruncated != nil)
        // Set files: manifest, sums, images, logs from the checkpoint through the roll.
        let files = s.list(dir)
        #expect(files.contains("MANIFEST.json") && files.contains("SHA256SUMS") && files.contains("app.edb") && files.contains("second.edb"))
        #expect(!files.contains(BackupSetLayout.marker))
        let sha = Process()
        sha.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        sha.arguments = ["-c", "--quiet", "SHA256SUMS"]
        sha.currentDirectoryURL = URL(fileURLWithPath: dir)
        try sha.run(); sha.waitUntilExit()
        #expect(sha.terminationStatus == 0, "sha256sum -c SHA256SUMS fails")
        try inst.close()
        // Headers: fullPrev set, incPrev clear; generations held by the backup are gone.
        for h in try headers(ip) {
            #expect(h.header.fullPrev?.genHigh == sum.generationsCopied!.upperBound)
            #expect(h.header.incPrev == nil)
        }
        #expect(generations(ip).allSatisfy { $0 > sum.generationsCopied!.upperBound })
        let target = s.path("restored")
        let r = try restore(dir, target)
        #expect(r.databases == 2)
        #expect(try digest(target) == before)
        // The restored instance is clean, has no backup slots, and takes writes and backups.
        for h in try headers(target) {
            #expect(h.header.state == .cleanShutdown)
            #expect(h.header.fullPrev == nil && h.header.incPrev == nil && !h.header.isBackupImage)
        }
        let ri = try open(target)
        expectJetError(.missingFullBackup) { _ = try backup(ri, dir, incremental: true) }
        try ri.commit([.put(database: "app", key: Array("new".utf8), value: [1, 2, 3])])
        _ = try backup(ri, s.mkdir("b2"))
        try ri.close()
        let lines = try EventLog(fs: PosixFileSystem(), path: ip + "/events.log").lines(limit: 100).joined()
        for id in [210, 220, 221, 223, 224, 213] { #expect(lines.contains("\"id\":\(id)"), "event \(id) missing") }
    }

    @Test func fullPlusIncrementalsRestoreEachStep() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 2000)
        let dir = s.mkdir("b")
        _ = try backup(inst, dir)
        var digests: [String] = []
        for k in 1...3 {
            try load(inst, from: 2000 * k, count: 700)
            try inst.commit([.delete(database: "app", key: LoadGenerator(seed: 1, valueSize: 120, updateRatio: 0.2).key(k))])
            let sum = try backup(inst, dir, incremental: true, level: k == 2 ? 3 : nil)
            #expect(sum.kind == .incremental)
            digests.append(try digest(inst))
            let m = try SetVerifier().manifest(in: dir).1
            #expect(m.chain.count == k + 1)
            #expect(m.chain.last!.genLow == m.chain[m.chain.count - 2].genHigh + 1)
        }
        let h = try headers(ip)[0].header
        #expect(h.incPrev != nil)
        try inst.close()
        _ = try SetVerifier().verify(dir)
        let target = s.path("r")
        _ = try restore(dir, target)
        #expect(try digest(target) == digests.last!)
    }

    @Test func atomicAfterAtomicKeepsOneCompleteSet() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        let dir = s.mkdir("b")
        for round in 0..<3 {
            try load(inst, from: round * 1000, count: 1000)
            let sum = try backup(inst, dir, atomic: true, level: round == 1 ? 1 : nil)
            #expect(sum.setDirectory == dir + "/new")
            #expect(s.list(dir) == ["new"])
            let target = s.path("r\(round)")
            _ = try restore(dir, target)
            #expect(try digest(target) == digest(inst))
        }
        // An incremental extends the atomic set in new/.
        try load(inst, from: 5000, count: 300)
        _ = try backup(inst, dir, incremental: true)
        let target = s.path("rinc")
        _ = try restore(dir, target)
        #expect(try digest(target) == digest(inst))
        try inst.close()
    }

    @Test func compressedLogsAreStandardZstdFrames() throws {
        let s = Scratch()
        let ip = try s.makeInstance()
        let inst = try open(ip)
        try load(inst, count: 3000)
        let dir = s.mkdir("b")
        let sum = try backup(inst, dir, level: 5)
        #expect(sum.compressionRatio > 1.2)
        try inst.close()
        let m = try SetVerifier().manifest(in: dir).1
        let zst = m.files.filter { $0.name.hasSuffix(".log.zst") }
        #expect(!zst.isEmpty)
        #expect(zst.allSatisfy { $0.rawSize != nil && $0.rawCrc32c != nil })
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/zstd") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zstd")
            p.arguments = ["-q", "-t"] + zst.map { dir + "/" + $0.name }
            try p.run(); p.waitUntilExit()
            #expect(p.terminationStatus == 0, "zstd -t rejects our frames")
        }
        _ = try restore(dir, s.path("r"))
        #expect(try digest(s.path("r")) == digest(ip))
    }

    /// Writers keep committing during the backup; the set restores to a state that holds
    /// every commit that returned before the backup started, and no partial commit.
    @Test(arguments: [1, 2])
    func onlineBackupWhileWritersCommit(round: Int) throws {
        let s = Scratch()
        let ip = try s.makeInstance { $0.cacheSize = 64 * 4096 }
        let inst = try open(ip)
        try inst.createDatabase("w")
        try load(inst, count: 2000)
        final class Counters: @unchecked Sendable {
            let lock = NSLock()
            var done = [Int](repeating: 0, count: 3)
            var stop = false
            var errors: [String] = []
        }
        let c = Counters()
        let group = DispatchGroup()
        for w in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var n = 0
                while true {
                    c.lock.lock(); let stop = c.stop; c.lock.unlock()
                    if stop { return }
                    // Each commit writes two keys: both or neither may be restored.
                    let a = Array("w\(w)-\(String(format: "%06d", n))-a".utf8), b = Array("w\(w)-\(String(format: "%06d", n))-b".utf8)
                    do {
                        try inst.commit([.put(database: "w", key: a, value: Array(repeating: UInt8(n & 0xff), count: 300)),
                                         .put(database: "w", key: b, value: Array(repeating: 7, count: n % 5 == 0 ? 5000 : 40))])
                    } catch {
                        c.lock.lock(); c.errors.append("\(error)"); c.lock.unlock(); return
                    }
                    n += 1
                    c.lock.lock(); c.done[w] = n; c.lock.unlock()
                }
            }
        }
        usleep(30_000)
        c.lock.lock(); let atStart = c.done; c.lock.unlock()
        let dir = s.mkdir("b")
        _ = try backup(inst, dir, atomic: round == 2)
        usleep(10_000)
        c.lock.lock(); c.stop = true; c.lock.unlock()
        group.wait()
        #expect(c.errors.isEmpty)
        try inst.close()
        // Every page of the image verifies: what was checked is what was written and hashed,
        // though the engine was writing the same pages (SHA256SUMS, CRC32C, page checksums).
        _ = try SetVerifier(fs: s.fs).verify(dir)
        let target = s.path("r")
        _ = try restore(dir, target)
        let ri = try open(target)
        var perWriter: [Int: Set<Int>] = [:]
        var halves: [String: Int] = [:]
        try ri.scan("w") { k, _ in
            let t = String(decoding: k, as: UTF8.self).split(separator: "-")
            let w = Int(t[0].dropFirst())!, n = Int(t[1])!
            perWriter[w, default: []].insert(n)
            halves["\(w)-\(n)", default: 0] += 1
            return true
        }
        try ri.close()
        #expect(halves.values.allSatisfy { $0 == 2 }, "a commit was restored in part")
        for w in 0..<3 {
            let got = perWriter[w] ?? []
            // A prefix of each writer's commits, at least those returned before the backup began.
            #expect(got == Set(0..<got.count), "writer \(w) has a gap")
            #expect(got.count >= atStart[w], "writer \(w): \(got.count) restored, \(atStart[w]) had returned before the backup")
        }
    }
}
