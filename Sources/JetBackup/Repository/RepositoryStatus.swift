import JetStore

/// `status --max-age`: is the repository's newest complete set recent and whole enough to
/// rely on? A cheap check for monitoring: its manifest decodes and checks, SHA256SUMS agrees
/// with it and the directory holds no stray set file (`verify` reads everything).
public enum RepositoryStatus {
    public enum Verdict: Sendable, Equatable {
        case ok
        /// The newest complete set's last backup is older than the limit.
        case tooOld
        /// The newest set (or every set) is damaged.
        case damaged
        /// No complete set at all.
        case noSet
    }

    public struct Report: Sendable {
        public var verdict: Verdict
        public var message: String
        public var newest: SetLabel?
        public var ageSeconds: Double?
    }

    public static func check(_ repo: Repository, maxAge: Double) throws -> Report {
        let scan = try repo.scan()
        let now = repo.clock.now()
        guard let s = scan.newestComplete, let m = s.manifest else {
            if let d = scan.sets.last(where: { $0.state == .damaged }) {
                return Report(verdict: .damaged, message: "no complete set; \(d.label) is damaged: \(d.problem ?? "")", newest: d.label)
            }
            return Report(verdict: .noSet, message: "repository \(repo.path) holds no complete set", newest: nil)
        }
        let end = m.chain.last?.endMicros ?? s.label.microseconds
        let age = Double(now > end ? now - end : 0) / 1e6
        // A damaged set newer than the newest complete one: the last backup went wrong.
        if let d = scan.sets.last, d.label > s.label, d.state == .damaged {
            return Report(verdict: .damaged, message: "the newest set \(d.label) is damaged: \(d.problem ?? ""); the newest complete set is \(s.label)",
                          newest: s.label, ageSeconds: age)
        }
        if age > maxAge {
            return Report(verdict: .tooOld, message: "the newest backup (set \(s.label), ended \(m.chain.last?.end ?? "")) is \(Durations.describe(age)) old, "
                + "more than \(Durations.describe(maxAge))", newest: s.label, ageSeconds: age)
        }
        return Report(verdict: .ok, message: "set \(s.label): last backup \(Durations.describe(age)) ago (\(m.chain.count) in its chain), "
            + "manifest and sums check", newest: s.label, ageSeconds: age)
    }
}
