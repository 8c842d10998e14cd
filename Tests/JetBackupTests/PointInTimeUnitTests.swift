import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// What a point-in-time restore rests on: RFC 3339 times as users type them, the commit
/// times a backup records in the manifest, and the check of a stop against them.
@Suite struct PointInTimeUnitTests {
    static let t = SetLabel("20261125T033600Z-full")!.microseconds

    @Test func rfc3339AcceptsOffsetsAndFractionsOfAnyLength() {
        let same = ["2026-11-25T03:36:00Z", "2026-11-25t03:36:00z", "2026-11-25T04:36:00+01:00", "2026-11-24T22:06:00-05:30",
                    "2026-11-25T03:36:00.000Z", "2026-11-25T03:36:00.0000000000-00:00"]
        for s in same { #expect(RFC3339.microseconds(s) == Self.t, "\(s)") }
        #expect(RFC3339.microseconds("2026-11-25T03:36:00.25Z") == Self.t + 250_000)
        #expect(RFC3339.microseconds("2026-11-25T03:36:00.000001Z") == Self.t + 1)
        // Past the microsecond, digits are dropped (not rounded): "at or before" is unchanged.
        #expect(RFC3339.microseconds("2026-11-25T03:36:00.1234569Z") == Self.t + 123_456)
        #expect(RFC3339.microseconds("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.microseconds("2024-02-29T12:00:00Z") != nil && RFC3339.microseconds("2000-02-29T12:00:00Z") != nil)
        // What the tool prints reads back exactly.
        for us in [Self.t, Self.t + 1, Self.t + 999_999, 1_700_000_000_123_456, 4_102_444_799_999_999] {
            #expect(RFC3339.microseconds(BackupManifest.time(us)) == us)
            #expect(RFC3339.microseconds(Clock.rfc3339(microseconds: us)) == us / 1000 * 1000)
        }
    }

    @Test func rfc3339RefusesWhatIsNotADateTime() {
        for bad in ["", "yesterday", "2026-11-25", "2026-11-25T03:36Z", "2026-11-25T03:36:00", "2026-11-25 03:36:00Z",
                    "2026-11-25T03:36:00.Z", "2026-11-25T03:36:00.5", "2026-11-25T24:00:00Z", "2026-11-25T03:60:00Z",
                    "2026-11-25T03:36:60Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-11-31T00:00:00Z",
                    "2026-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-11-25T03:36:00+0100", "2026-11-25T03:36:00+01",
                    "2026-11-25T03:36:00+24:00", "2026-11-25T03:36:00Z ", " 2026-11-25T03:36:00Z", "2026-11-25T03:36:00ZZ",
                    "1970-01-01T00:59:59+01:00", "+2026-11-25T03:36:00Z", "2026-1-25T03:36:00Z", "２０２６-11-25T03:36:00Z"] {
            #expect(RFC3339.microseconds(bad) == nil, "\(bad)")
        }
    }

    /// A full then an incremental: the manifest records the latest commit of each (what
    /// `commitTimed` returned), and stops are checked against them.
    @Test func backupsRecordTheirLatestCommitTimeAndStopsAreCheckedAgainstIt() throws {
        let s = Scratch()
        let inst = try open(try s.makeInstance())
        defer { try? inst.close() }
        try inst.createDatabase("app")
        func commit(_ n: Int, _ v: Int) throws -> UInt64 {
            var last: UInt64 = 0
            for i in 0..<n {
                last = try #require(try inst.commitTimed([.put(database: "app", key: Array("k\(i)".utf8), value: [UInt8](repeating: UInt8(v), count: 900))]).time)
            }
            return last
        }
        let beforeFull = try commit(40, 1)
        let dir = s.mkdir("set")
        _ = try backup(inst, dir)
        let beforeInc = try commit(120, 2)
        _ = try backup(inst, dir, incremental: true)
        let (setDir, m) = try SetVerifier().manifest(in: dir)
        #expect(m.chain.count == 2)
        #expect(m.consistentMicros == beforeFull)
        #expect(m.chain[1].lastCommitMicros == beforeInc && m.endMicros == beforeInc)
        #expect(m.chain[1].genHigh > m.chain[0].genHigh + 1)

        try m.checkStop(.time(beforeFull), setDir: setDir)
        try m.checkStop(.time(beforeInc), setDir: setDir)
        try m.checkStop(.generation(m.chain[0].genHigh), setDir: setDir)
        try m.checkStop(.generation(m.lastGeneration), setDir: setDir)
        for stop: Instance.RecoveryStop in [.time(beforeFull - 1), .time(beforeInc + 1), .time(0), .time(.max),
                                            .generation(m.chain[0].genHigh - 1), .generation(m.lastGeneration + 1)] {
            expectJetError(.invalidParameter) { try m.checkStop(stop, setDir: setDir) }
        }
        // A set written before commit times were recorded: a time cannot be checked, a generation can.
        var old = m
        for i in old.chain.indices { old.chain[i].lastCommitMicros = nil }
        do {
            try old.checkStop(.time(beforeInc), setDir: setDir)
            Issue.record("a time was accepted for a set without commit times")
        } catch let e as JetError {
            #expect(e.code == .invalidParameter && e.message.contains("records no commit times"), "\(e)")
        }
        try old.checkStop(.generation(m.lastGeneration), setDir: setDir)
        // The field is optional in the manifest: such a set still reads and its checksum holds.
        let decoded = try BackupManifest.decode(try old.encoded(), path: "MANIFEST.json")
        #expect(decoded.consistentMicros == nil && decoded.endMicros == nil)
    }

    /// The manifest's commit times are what a restore to a time trusts to keep replay past
    /// the full backup's logs: one the logs do not give, even sealed, is refused by verify and
    /// restore alike (nothing left in TARGET); a manifest without them still restores.
    @Test func verifyAndRestoreRefuseCommitTimesTheLogsDoNotGive() throws {
        let s = Scratch()
        let (dir, truth) = try SetReadingTests.makeSet(s)
        let m = try SetReadingTests.readManifest(dir)
        #expect(m.chain.count == 3 && m.chain.allSatisfy { $0.lastCommitMicros != nil })
        var (v, r, d, left) = try SetReadingTests.verifyAndRestore(dir, target: s.path("t"))
        #expect(v == nil && r == nil && d == truth)
        for (i, earlier) in [(0, true), (0, false), (1, true), (2, false)] {
            var e = m
            let t = try #require(e.chain[i].lastCommitMicros)
            e.chain[i].lastCommitMicros = earlier ? t - 1 : t + 1
            try SetReadingTests.writeResealed(e, dir)
            (v, r, _, left) = try SetReadingTests.verifyAndRestore(dir, target: s.path("t"))
            #expect(v == .databaseCorrupted && r == v && !left, "backup \(i) \(earlier ? "earlier" : "later"): \(String(describing: v)) \(String(describing: r))")
        }
        var old = m
        for i in old.chain.indices { old.chain[i].lastCommitMicros = nil }
        try SetReadingTests.writeResealed(old, dir)
        (v, r, d, left) = try SetReadingTests.verifyAndRestore(dir, target: s.path("t"))
        #expect(v == nil && r == nil && d == truth)
    }

    /// A restore to a point reads only what replay can reach: a damaged generation of a later
    /// backup, which fails verify and a whole restore, does not keep it from a point before.
    @Test func aDamagedLaterBackupDoesNotKeepARestoreFromAnEarlierPoint() throws {
        let s = Scratch()
        let inst = try open(try s.makeInstance())
        let dir = s.mkdir("set")
        try load(inst, count: 300)
        _ = try backup(inst, dir)
        let d0 = try digest(inst)
        try load(inst, from: 300, count: 300)
        _ = try backup(inst, dir, incremental: true)
        let d1 = try digest(inst)
        try load(inst, from: 600, count: 300)
        _ = try backup(inst, dir, incremental: true)
        try inst.close()
        let (setDir, m) = try SetVerifier().manifest(in: dir)
        let damaged = try #require(m.files.last { $0.kind == .log && $0.backup == 2 })
        flipByte(setDir + "/" + damaged.name, at: Int(damaged.size) / 2)
        expectJetError(.logReadVerifyFailure) { _ = try SetVerifier().verify(dir) }
        expectJetError(.logReadVerifyFailure) { _ = try restore(dir, s.path("whole")) }
        #expect(!FileManager.default.fileExists(atPath: s.path("whole")))
        var ri = RestoreInstance()
        ri.stopAt = .generation(m.chain[1].genHigh)
        let g = try ri.restore(from: dir, to: s.path("g"), owner: "test")
        #expect(try digest(s.path("g")) == d1 && g.generations == Int(m.chain[1].genHigh - m.chain[0].genLow) + 1)
        ri.stopAt = .time(try #require(m.consistentMicros))
        _ = try ri.restore(from: dir, to: s.path("t"), owner: "test")
        #expect(try digest(s.path("t")) == d0)
        // A time inside the damaged backup's commits needs its logs: refused as damage.
        ri.stopAt = .time(try #require(m.endMicros))
        expectJetError(.logReadVerifyFailure) { _ = try ri.restore(from: dir, to: s.path("end"), owner: "test") }
        #expect(!FileManager.default.fileExists(atPath: s.path("end")))
    }
}
