import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

@Suite struct RepositoryUnitTests {
    static let day: UInt64 = 86_400_000_000
    static let t0 = SetLabel("20261101T000000Z-full")!.microseconds

    @Test func setLabelRoundTripsAndSortsByTime() throws {
        let l = try #require(SetLabel("20261125T033600Z-full"))
        #expect(l.description == "20261125T033600Z-full")
        #expect(SetLabel(microseconds: l.microseconds + 999_999) == l)
        #expect(SetLabel(seconds: l.seconds + 1) > l)
        #expect(SetLabel(seconds: l.seconds + 1).description == "20261125T033601Z-full")
    }

    @Test func setLabelRefusesEverythingElse() {
        for bad in ["", "..", "../20261125T033600Z-full", "20261125T033600Z-full/..", "20261125T033600Z-incr", "20261125T033600Z",
                    "20261131T033600Z-full", "20261125T253600Z-full", "2026112XT033600Z-full", " 20261125T033600Z-full",
                    "20261125t033600Z-full", "20261125T033600Z-full.tmp", ".expiring-20261125T033600Z-full"] {
            #expect(SetLabel(bad) == nil, "\(bad)")
        }
    }

    @Test func rfc3339ParsesUTCWithFractions() {
        #expect(WallClock.parseRFC3339("2026-11-25T03:36:00Z") == SetLabel("20261125T033600Z-full")!.microseconds)
        #expect(WallClock.parseRFC3339("2026-11-25T03:36:00.5Z") == SetLabel("20261125T033600Z-full")!.microseconds + 500_000)
        #expect(WallClock.parseRFC3339("2026-11-25T03:36:00+01:00") == nil)
        #expect(WallClock.parseRFC3339("2026-11-25 03:36:00Z") == nil)
    }

    @Test func repositoryMarkerRoundTripsAndRefusesFutureVersions() throws {
        let m = Repository.Marker(created: "2026-11-25T03:36:00.000Z")
        #expect(try Repository.Marker.decode(try m.encoded(), path: "x") == m)
        var future = m
        future.formatVersion = Repository.formatVersion + 1
        #expect(throws: JetError.self) { try Repository.Marker.decode(try future.encoded(), path: "x") }
        do {
            _ = try Repository.Marker.decode(try future.encoded(), path: "x")
        } catch let e as JetError {
            #expect(e.code == .invalidParameter && e.message.contains("newer jetbackup"))
        }
        var other = m
        other.format = "something-else"
        #expect(throws: JetError.self) { try Repository.Marker.decode(try other.encoded(), path: "x") }
        #expect(throws: JetError.self) { try Repository.Marker.decode(Array("{".utf8), path: "x") }
    }

    @Test func durationsParseUnits() {
        #expect(Durations.parse("90s") == 90)
        #expect(Durations.parse("30m") == 1800)
        #expect(Durations.parse("2h") == 7200)
        #expect(Durations.parse("1d") == 86400)
        #expect(Durations.parse("1w") == 604_800)
        #expect(Durations.parse("250ms") == 0.25)
        #expect(Durations.parse("15") == 15)
        for bad in ["", "h", "-1h", "1y", "1.5.2h", "nanh"] { #expect(Durations.parse(bad) == nil, "\(bad)") }
    }

    // MARK: Retention

    func set(_ dayOffset: Double, _ state: RepositorySet.State = .complete, lastsDays: Double = 0.9, busy: Bool = false) -> Retention.Candidate {
        let start = Self.t0 + UInt64(dayOffset * Double(Self.day))
        return Retention.Candidate(label: SetLabel(microseconds: start), state: state,
                                   endMicros: start + UInt64(lastsDays * Double(Self.day)), busy: busy)
    }

    func deleted(_ sets: [Retention.Candidate], _ policy: Retention.Policy, nowDay: Double) -> [Int] {
        let plan = Retention.plan(sets, policy: policy, now: Self.t0 + UInt64(nowDay * Double(Self.day)))
        return sets.indices.filter { i in plan.first { $0.label == sets[i].label }?.delete == true }
    }

    @Test func keepFullKeepsTheNNewestCompleteSets() {
        let sets = (0..<6).map { set(Double($0)) }
        #expect(deleted(sets, .init(keepFull: 3), nowDay: 6) == [0, 1, 2])
        #expect(deleted(sets, .init(keepFull: 1), nowDay: 6) == [0, 1, 2, 3, 4])
        #expect(deleted(sets, .init(keepFull: 10), nowDay: 6) == [])
    }

    @Test func theNewestCompleteSetIsNeverDeleted() {
        // keepFull 0 is refused by the command line; the function still keeps the newest.
        let sets = [set(0), set(1), set(2, .incomplete, lastsDays: 0)]
        #expect(deleted(sets, .init(keepFull: 0), nowDay: 100) == [0, 2])
        #expect(deleted([set(0)], .init(keepFull: 1, keepDays: 0), nowDay: 100) == [])
    }

    @Test func keepDaysKeepsEverySetNeededForTheWindowAndTheOneBeforeIt() {
        // Sets started on days 0..9, each extended for 0.9 days; now is day 10. Seven days
        // back is day 3: sets 3..9 end inside the window, set 2 ended before it (day 2.9)
        // and is the last before the window, so it stays too; 0 and 1 go.
        let sets = (0..<10).map { set(Double($0)) }
        #expect(deleted(sets, .init(keepFull: 3, keepDays: 7), nowDay: 10) == [0, 1])
        // keepFull alone would delete 0..6; the union keeps what either rule keeps.
        #expect(deleted(sets, .init(keepFull: 3), nowDay: 10) == Array(0...6))
        // A set that began before the window but ran into it is kept by its end time.
        let long = [set(0, lastsDays: 5), set(5), set(6)]
        #expect(deleted(long, .init(keepFull: 1, keepDays: 2), nowDay: 7) == [])
        #expect(deleted(long, .init(keepFull: 1, keepDays: 0.5), nowDay: 7) == [0])
    }

    @Test func damagedSetsAreKeptAndIncompleteOnesRemoved() {
        let sets = [set(0, .damaged), set(1), set(2, .incomplete, lastsDays: 0), set(3), set(4, .damaged)]
        #expect(deleted(sets, .init(keepFull: 1), nowDay: 5) == [1, 2])
        let plan = Retention.plan(sets, policy: .init(keepFull: 1), now: Self.t0 + 5 * Self.day)
        #expect(plan[0].reason.contains("damaged") && !plan[0].delete)
        // A damaged set does not count as one of the N newest: the complete one stays.
        #expect(deleted([set(0), set(1, .damaged)], .init(keepFull: 1), nowDay: 2) == [])
    }

    @Test func aSetARunningBackupHoldsIsKept() {
        let sets = [set(0, busy: true), set(1), set(2, .incomplete, lastsDays: 0, busy: true), set(3)]
        #expect(deleted(sets, .init(keepFull: 1), nowDay: 4) == [1])
    }

    @Test func retentionOrderDoesNotDependOnInputOrder() {
        let sets = (0..<8).map { set(Double($0)) }
        let a = Retention.plan(sets, policy: .init(keepFull: 2, keepDays: 3), now: Self.t0 + 8 * Self.day)
        let b = Retention.plan(sets.reversed(), policy: .init(keepFull: 2, keepDays: 3), now: Self.t0 + 8 * Self.day)
        #expect(a == b)
        #expect(a.filter(\.delete).map(\.label) == sets.prefix(4).map(\.label))
    }

    // MARK: Metrics and throttle

    @Test func metricsKeepOtherJobsAndTheLastSuccessOfAFailedRun() {
        var ok = Metrics(job: "backup", labels: [("instance", "/srv/db")], success: true, exitStatus: 0, durationSeconds: 2, now: 1_000_000_000)
        ok.bytesRead = 10
        ok.bytesStored = 7
        ok.sets = 3
        let first = ok.render(previous: nil)
        #expect(first.contains("jetbackup_last_success_timestamp_seconds{job=\"backup\",instance=\"/srv/db\"} 1000\n"))
        #expect(first.contains("jetbackup_repository_sets{job=\"backup\",instance=\"/srv/db\"} 3\n"))
        #expect(first.contains("# TYPE jetbackup_last_bytes_stored gauge\n"))
        let exp = Metrics(job: "expire", labels: [("repository", "/r")], success: true, exitStatus: 0, durationSeconds: 1, now: 1_500_000_000)
        let both = exp.render(previous: first)
        #expect(both.contains("jetbackup_last_bytes_stored{job=\"backup\",instance=\"/srv/db\"} 7\n"))
        #expect(both.contains("jetbackup_last_success_timestamp_seconds{job=\"expire\",repository=\"/r\"} 1500\n"))
        let failed = Metrics(job: "backup", labels: [("instance", "/srv/db")], success: false, exitStatus: 75, durationSeconds: 0, now: 3_000_000_000)
        let after = failed.render(previous: both)
        #expect(after.contains("jetbackup_last_success_timestamp_seconds{job=\"backup\",instance=\"/srv/db\"} 1000\n"))
        #expect(after.contains("jetbackup_last_run_timestamp_seconds{job=\"backup\",instance=\"/srv/db\"} 3000\n"))
        #expect(after.contains("jetbackup_last_exit_status{job=\"backup\",instance=\"/srv/db\"} 75\n"))
        #expect(after.contains("{job=\"expire\",repository=\"/r\"} 1500\n"))
        // Each metric has exactly one HELP and TYPE line.
        #expect(after.components(separatedBy: "# TYPE jetbackup_last_exit_status").count == 2)
    }

    @Test func metricsEscapeLabelValues() {
        let m = Metrics(job: "backup", labels: [("instance", "/a\"b\\c")], success: true, exitStatus: 0, durationSeconds: 0, now: 0)
        #expect(m.render(previous: nil).contains("instance=\"/a\\\"b\\\\c\""))
    }

    @Test func throttleHoldsTheRateOnAFakeClock() {
        final class T: @unchecked Sendable { var now = 0.0 }
        let t = T()
        let th = Throttle(bytesPerSecond: 1_000_000, now: { t.now }, sleep: { t.now += $0 })
        // 10 s worth in 64 KiB chunks: the clock must advance 10 s (within the bucket's quarter second).
        var sent: Int64 = 0
        while sent < 10_000_000 {
            th.consume(65536)
            sent += 65536
        }
        #expect(t.now >= Double(sent) / 1_000_000 - 0.26 && t.now <= Double(sent) / 1_000_000 * 1.01, "\(t.now)")
        // A pause does not buy a burst larger than the bucket.
        t.now += 100
        let before = t.now
        th.consume(1_000_000)
        #expect(t.now - before >= 0.74)
    }
}
