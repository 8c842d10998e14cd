import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The manifest's checksum, verify and restore agreeing on every set, a restore stopped at
/// any of its cancellation points, and a set that lost its manifest.
@Suite struct SetReadingTests {
    /// A small set with a full and two incrementals (the second compressed), its digest.
    static func makeSet(_ s: Scratch) throws -> (dir: String, digest: String) {
        let ip = try s.makeInstance { $0.checkpointDepth = 4 << 20 }
        let inst = try open(ip)
        try load(inst, count: 600)
        try load(inst, "other", count: 150, seed: 3)
        let dir = s.mkdir("set")
        try inst.flushCheckpoint()
        _ = try backup(inst, dir)
        try load(inst, from: 600, count: 200)
        _ = try backup(inst, dir, incremental: true)
        try load(inst, from: 800, count: 200)
        _ = try backup(inst, dir, incremental: true, level: 3)
        let d = try digest(inst)
        try inst.close()
        return (dir, d)
    }

    static func manifestPath(_ dir: String) -> String { dir + "/" + BackupSetLayout.manifest }

    static func readManifest(_ dir: String) throws -> BackupManifest {
        try JSONDecoder().decode(BackupManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath(dir))))
    }

    /// Writes `m` as it is, its checksum recomputed: a self-consistent manifest that says
    /// something else (a bug, or a deliberate edit).
    static func writeResealed(_ m: BackupManifest, _ dir: String) throws {
        var m = m
        m.checksum = try m.computedChecksum()
        try Data(m.encodedAsIs()).write(to: URL(fileURLWithPath: manifestPath(dir)))
    }

    /// The outcome of verify and of restore into a new TARGET (nil: success), the restored
    /// digest, and whether a failed restore left TARGET behind.
    static func verifyAndRestore(_ dir: String, target: String) throws -> (JetError.Code?, JetError.Code?, String?, Bool) {
        var v: JetError.Code?, r: JetError.Code?, d: String?
        do { _ = try SetVerifier().verify(dir) } catch let e as JetError { v = e.code }
        do {
            _ = try restore(dir, target)
            d = try digest(target)
        } catch let e as JetError { r = e.code }
        let left = r != nil && FileManager.default.fileExists(atPath: target)
        try? FileManager.default.removeItem(atPath: target)
        return (v, r, d, left)
    }

    @Test func newManifestsAreSealedAndUnsealedOnesOnlyInFormat1() throws {
        let s = Scratch()
        let (dir, d) = try Self.makeSet(s)
        let m = try Self.readManifest(dir)
        #expect(m.formatVersion == BackupManifest.formatVersion && m.formatVersion == 2)
        #expect(m.checksum == (try m.computedChecksum()))
        // Format 2 without its checksum is damaged.
        var bare = m
        bare.checksum = nil
        try Data(bare.encodedAsIs()).write(to: URL(fileURLWithPath: Self.manifestPath(dir)))
        expectJetError(.databaseCorrupted) { _ = try SetVerifier().verify(dir) }
        // Format 1 had none and is still read (the fixture set is such a set, see FixtureTests).
        bare.formatVersion = 1
        try Data(bare.encodedAsIs()).write(to: URL(fileURLWithPath: Self.manifestPath(dir)))
        _ = try SetVerifier().verify(dir)
        _ = try restore(dir, s.path("t1"))
        #expect(try digest(s.path("t1")) == d)
        // A format 1 manifest with a checksum is held to it.
        bare.checksum = String(repeating: "0", count: 64)
        try Data(bare.encodedAsIs()).write(to: URL(fileURLWithPath: Self.manifestPath(dir)))
        expectJetError(.databaseCorrupted) { _ = try SetVerifier().verify(dir) }
    }

    /// The issue's case: one bit of replayFrom.offset changed. verify said the set restores,
    /// and restore then blamed the log.
    @Test func damagedManifestFieldIsReportedAsDamagedManifest() throws {
        let s = Scratch()
        let (dir, _) = try Self.makeSet(s)
        let m = try Self.readManifest(dir)
        let text = try String(contentsOfFile: Self.manifestPath(dir), encoding: .utf8)
        let from = "\"offset\" : \(m.replayFrom.offset)"
        #expect(text.contains(from))
        let flipped = text.replacingOccurrences(of: from, with: "\"offset\" : \(m.replayFrom.offset ^ 16)")
        try flipped.write(toFile: Self.manifestPath(dir), atomically: false, encoding: .utf8)
        for body in [{ _ = try SetVerifier().verify(dir) }, { _ = try restore(dir, s.path("t")) }] as [() throws -> Void] {
            do {
                try body()
                Issue.record("a damaged manifest was accepted")
            } catch let e as JetError {
                #expect(e.code == .databaseCorrupted && e.message.contains("MANIFEST.json") && e.message.contains("checksum"), "\(e)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: s.path("t")))
    }

    /// The same edit with the checksum recomputed, and the replay start moved to the next
    /// record: verify must refuse what restore cannot restore (or would restore wrongly).
    @Test func verifyRefusesAReplayStartRestoreCannotUse() throws {
        let s = Scratch()
        let (dir, _) = try Self.makeSet(s)
        let m = try Self.readManifest(dir)
        let first = m.files.first { $0.generation == m.replayFrom.generation }!
        let g = try LogReader.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/" + first.name))), path: first.name)
        let next = g.fragments.first { $0.offset > Int(m.replayFrom.offset) }.map { UInt32($0.offset) }
        for offset in [m.replayFrom.offset ^ 16, m.replayFrom.offset + 4, next].compactMap({ $0 }) {
            var e = m
            e.replayFrom.offset = offset
            try Self.writeResealed(e, dir)
            let (v, r, _, left) = try Self.verifyAndRestore(dir, target: s.path("t"))
            #expect(v == .databaseCorrupted, "replay start \(offset): verify gave \(String(describing: v))")
            #expect(r == v, "replay start \(offset): restore gave \(String(describing: r)), verify \(String(describing: v))")
            #expect(!left)
        }
    }

    /// Random edits of every field of the manifest, each left as it is (damage: the checksum
    /// must catch it) or resealed (a wrong but self-consistent manifest: verify's own checks
    /// must catch it). Always: verify succeeds exactly when restore does, with the same
    /// error when both fail, and a restore that succeeds gives the set's digest.
    @Test func manifestEditCampaign() throws {
        let s = Scratch()
        let (dir, truth) = try Self.makeSet(s)
        let original = try Data(contentsOf: URL(fileURLWithPath: Self.manifestPath(dir)))
        let originalManifest = try Self.readManifest(dir)
        let tree = try JSONSerialization.jsonObject(with: original)
        let leaves = ManifestEdits.leaves(tree)
        let seed = UInt64(Date().timeIntervalSince1970 * 1000)
        var rng = SplitMix64(seed: seed)
        // Each field gets one raw and two resealed edits in the short run.
        let n = ProcessInfo.processInfo.environment["JETBACKUP_STRESS"] == "long" ? 3000 : 3 * leaves.count
        var counts: [String: Int] = [:]
        for i in 0..<n {
            let resealed = i % 3 != 0
            let path = leaves[(i / 3) % leaves.count]
            let (edited, what) = ManifestEdits.edit(tree, at: path, leaves: leaves, rng: &rng)
            var bytes = try JSONSerialization.data(withJSONObject: edited, options: [.prettyPrinted, .sortedKeys])
            let decoded = try? JSONDecoder().decode(BackupManifest.self, from: bytes)
            if resealed, var m = decoded {
                m.checksum = try m.computedChecksum()
                bytes = Data(try m.encodedAsIs())
            }
            try bytes.write(to: URL(fileURLWithPath: Self.manifestPath(dir)))
            let (v, r, d, left) = try Self.verifyAndRestore(dir, target: s.path("t"))
            let label = "seed \(seed) edit \(i) (\(resealed ? "resealed" : "raw")): \(what)"
            #expect(v == r, "\(label): verify \(String(describing: v)), restore \(String(describing: r))")
            #expect(!left, "\(label): a failed restore left TARGET")
            if r == nil { #expect(d == truth, "\(label): restored to a wrong digest") }
            // Unsealed, any change of what the manifest says is damage the checksum finds.
            if !resealed, decoded.map({ $0 != originalManifest }) ?? true {
                #expect(v == .databaseCorrupted, "\(label): an edit went unseen (verify \(String(describing: v)))")
            }
            counts["\(resealed ? "resealed" : "raw") \(v == nil ? "accepted" : "refused")", default: 0] += 1
        }
        try original.write(to: URL(fileURLWithPath: Self.manifestPath(dir)))
        print("manifest edit campaign (seed \(seed)): \(n) edits of \(leaves.count) fields, \(counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }

    /// A restore told to stop at its k-th cancellation poll — in the image copy, between
    /// logs, during replay, just before it completes — stops with JET_errTermInProgress and
    /// leaves TARGET as it was: absent, or an empty directory.
    @Test func restoreStoppedAtAnyPointLeavesTargetAsItWas() throws {
        let s = Scratch()
        let (dir, truth) = try Self.makeSet(s)
        // Count the polls of a whole restore, and those made before replay (which reads the
        // logs as it replays them: it starts after the last image's progress).
        var polls = 0, pollsBeforeReplay = 0
        _ = try RestoreInstance().restore(from: dir, to: s.path("count"), owner: "test", isCancelled: { polls += 1; return false }) { st in
            if case .progress(_, _, let file) = st, file.hasSuffix(".edb") { pollsBeforeReplay = polls }
        }
        #expect(polls - pollsBeforeReplay >= 3, "replay polls too rarely to be tested (\(polls) polls, \(pollsBeforeReplay) before replay)")
        print("restore stopped at each of its \(polls) cancellation polls (\(polls - pollsBeforeReplay) in replay), into a missing and an empty TARGET")
        for k in 1...polls {
            for existing in [false, true] {
                let target = s.path("t\(k)-\(existing)")
                if existing { try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false) }
                var seen = 0
                expectJetError(.termInProgress) {
                    _ = try RestoreInstance().restore(from: dir, to: target, owner: "test", isCancelled: { seen += 1; return seen >= k })
                }
                if existing {
                    #expect(s.list(target).isEmpty, "poll \(k): TARGET holds \(s.list(target))")
                } else {
                    #expect(!FileManager.default.fileExists(atPath: target), "poll \(k): TARGET was left")
                }
                // And the next restore into it succeeds.
                if k % 7 == 0 || k == polls {
                    _ = try restore(dir, target)
                    #expect(try digest(target) == truth)
                }
            }
        }
    }

    /// A set whose MANIFEST.json was deleted is a damaged set, not "no set"; an empty
    /// directory, an interrupted backup's leftovers and an instance are still no set.
    @Test func setWithoutManifestIsReportedDamaged() throws {
        let s = Scratch()
        let (dir, _) = try Self.makeSet(s)
        try FileManager.default.removeItem(atPath: Self.manifestPath(dir))
        for body in [{ _ = try SetVerifier().verify(dir) }, { _ = try restore(dir, s.path("t")) },
                     { _ = try SetVerifier().manifest(in: dir) }] as [() throws -> Void] {
            do {
                try body()
                Issue.record("a set without its manifest was accepted")
            } catch let e as JetError {
                #expect(e.code == .databaseCorrupted && e.message.contains("MANIFEST.json"), "\(e)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: s.path("t")))
        // An atomic set's new/ likewise.
        let a = s.mkdir("atomic")
        try FileManager.default.moveItem(atPath: dir, toPath: a + "/new")
        expectJetError(.databaseCorrupted) { _ = try SetVerifier().verify(a) }
        expectJetError(.invalidBackupSequence) { _ = try SetVerifier().verify(s.mkdir("empty")) }
        expectJetError(.invalidBackupSequence) { _ = try SetVerifier().verify(try s.makeInstance("inst2")) }
        let killed = s.mkdir("killed")
        try Data("app.edb\n".utf8).write(to: URL(fileURLWithPath: killed + "/" + BackupSetLayout.marker))
        try Data(count: 4096).write(to: URL(fileURLWithPath: killed + "/app.edb"))
        expectJetError(.missingFileToBackup) { _ = try SetVerifier().verify(killed) }
    }
}

/// Edits of a manifest's JSON: one leaf (a number, a string) changed, removed or retyped,
/// or an array element dropped, duplicated or swapped.
enum ManifestEdits {
    enum Step: CustomStringConvertible {
        case key(String), index(Int)
        var description: String { switch self { case .key(let k): k; case .index(let i): "[\(i)]" } }
    }

    static func leaves(_ v: Any, _ at: [Step] = []) -> [[Step]] {
        if let d = v as? [String: Any] { return d.keys.sorted().flatMap { leaves(d[$0]!, at + [.key($0)]) } }
        if let a = v as? [Any] { return a.indices.flatMap { leaves(a[$0], at + [.index($0)]) } }
        return [at]
    }

    static func get(_ v: Any, _ path: ArraySlice<Step>) -> Any? {
        guard let step = path.first else { return v }
        switch step {
        case .key(let k): return (v as? [String: Any])?[k].flatMap { get($0, path.dropFirst()) }
        case .index(let i): return (v as? [Any]).flatMap { i < $0.count ? get($0[i], path.dropFirst()) : nil }
        }
    }

    /// `change` gets the value at the end of `path` (or the array holding it, with `container`).
    static func set(_ v: Any, _ path: ArraySlice<Step>, _ change: (Any?) -> Any?) -> Any? {
        guard let step = path.first else { return change(v) }
        switch step {
        case .key(let k):
            var d = v as? [String: Any] ?? [:]
            d[k] = path.count == 1 ? change(d[k]) : d[k].flatMap { set($0, path.dropFirst(), change) }
            return d
        case .index(let i):
            var a = v as? [Any] ?? []
            guard i < a.count else { return a }
            if path.count == 1 {
                if let x = change(a[i]) { a[i] = x } else { a.remove(at: i) }
            } else if let x = set(a[i], path.dropFirst(), change) {
                a[i] = x
            }
            return a
        }
    }

    static func edit(_ tree: Any, at path: [Step], leaves: [[Step]], rng: inout SplitMix64) -> (Any, String) {
        let where_ = path.map(\.description).joined(separator: ".")
        let old = get(tree, path[...])
        let pick = rng.next() % 16
        // Structural edits of the nearest array: drop, duplicate or swap an element.
        if pick == 0, let k = path.lastIndex(where: { if case .index = $0 { true } else { false } }) {
            let arrayPath = path[..<k]
            guard case .index(let i) = path[k], let a = get(tree, arrayPath) as? [Any] else { return (tree, "none") }
            let j = Int(rng.next() % UInt64(a.count))
            let how = rng.next() % 3
            let result = set(tree, arrayPath) { v in
                var a = v as? [Any] ?? []
                switch how {
                case 0: a.remove(at: i)
                case 1: a.insert(a[i], at: j)
                default: a.swapAt(i, j)
                }
                return a
            }
            return (result ?? tree, "\(["drop", "duplicate", "swap"][Int(how)]) element \(i) (\(j)) of \(arrayPath.map(\.description).joined(separator: "."))")
        }
        if pick == 1 { return (set(tree, path[...]) { _ in nil } ?? tree, "remove \(where_)") }
        let other = get(tree, leaves[Int(rng.next() % UInt64(leaves.count))][...])
        let new: Any
        if let n = old as? NSNumber, let i = Int64(exactly: n.doubleValue) {
            // Mostly near misses (what a bug or a flipped bit makes), sometimes far off.
            let near: [Int64] = [i ^ (1 << Int64(rng.next() % 16)), i + 1, i - 1, i + Int64(rng.next() % 64) - 32]
            let far: [Int64] = [i ^ (1 << Int64(rng.next() % 33)), 0, -1, Int64(UInt32.max), 1 << 40, (other as? NSNumber)?.int64Value ?? i + 2]
            new = pick == 2 ? "\(i)" as Any : pick < 6 ? far[Int(rng.next() % UInt64(far.count))] : near[Int(rng.next() % UInt64(near.count))]
        } else if let str = old as? String {
            var u = Array(str.utf8)
            switch pick {
            case 2: new = 7
            case 3: new = ""
            case 4: new = (other as? String) ?? str + "x"
            default:
                if u.isEmpty { new = "x"; break }
                let k = Int(rng.next() % UInt64(u.count))
                u[k] ^= UInt8(1 << (rng.next() % 7))
                new = String(decoding: u, as: UTF8.self)
            }
        } else {
            new = 1
        }
        return (set(tree, path[...]) { _ in new } ?? tree, "\(where_): \(old.map { "\($0)" } ?? "nil") -> \(new)")
    }
}
