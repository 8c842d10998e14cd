/// What `expire` keeps: a pure function of the sets, the policy and "now" (README,
/// "Retention"). Only whole sets are deleted. A complete set is kept when either rule
/// keeps it:
///
/// - `keepFull` N: the N newest complete sets;
/// - `keepDays` D: every complete set with a backup (its full or any incremental) taken
///   in the last D days, and the newest complete set whose last backup is older than that,
///   so every moment of the last D days can be restored to the last backup at or before it.
///
/// Whatever the policy: the newest complete set is kept; a set a running backup holds
/// (`busy`) is kept; a damaged set is kept and reported (it is evidence: expire never
/// removes what it cannot read); an incomplete set (the leftovers of a stopped backup)
/// that no run holds is removed.
public enum Retention {
    public struct Policy: Sendable, Equatable {
        public var keepFull: Int
        public var keepDays: Double?

        public init(keepFull: Int, keepDays: Double? = nil) {
            self.keepFull = keepFull
            self.keepDays = keepDays
        }
    }

    public struct Candidate: Sendable {
        public var label: SetLabel
        public var state: RepositorySet.State
        /// When its last backup ended (microseconds since the epoch).
        public var endMicros: UInt64
        /// A running backup holds it.
        public var busy = false

        public init(label: SetLabel, state: RepositorySet.State, endMicros: UInt64, busy: Bool = false) {
            self.label = label
            self.state = state
            self.endMicros = endMicros
            self.busy = busy
        }
    }

    public struct Decision: Sendable, Equatable {
        public var label: SetLabel
        public var delete: Bool
        public var reason: String
    }

    /// One decision per candidate, in label order.
    public static func plan(_ sets: [Candidate], policy: Policy, now: UInt64) -> [Decision] {
        let sorted = sets.sorted { $0.label < $1.label }
        let complete = sorted.filter { $0.state == .complete }
        let newestN = Set(complete.suffix(max(1, policy.keepFull)).map(\.label))
        var recent = Set<SetLabel>()
        if let days = policy.keepDays {
            let window = UInt64(max(0, days) * 86400 * 1_000_000)
            let cutoff = now > window ? now - window : 0
            recent = Set(complete.filter { $0.endMicros >= cutoff }.map(\.label))
            // The last set before the window covers its first moments.
            if let before = complete.last(where: { $0.endMicros < cutoff }) { recent.insert(before.label) }
        }
        let newest = complete.last?.label
        return sorted.map { s in
            func keep(_ why: String) -> Decision { Decision(label: s.label, delete: false, reason: why) }
            if s.busy { return keep("a running backup holds it") }
            switch s.state {
            case .damaged:
                return keep("damaged: expire never removes a set it cannot read; inspect it, then remove it by hand")
            case .incomplete:
                return Decision(label: s.label, delete: true, reason: "incomplete: the leftovers of a backup that stopped")
            case .complete:
                if s.label == newest { return keep("the newest complete set") }
                if newestN.contains(s.label) { return keep("one of the \(policy.keepFull) newest complete sets") }
                if recent.contains(s.label), let d = policy.keepDays {
                    return keep("needed to restore to a moment of the last \(Durations.describe(d * 86400))")
                }
                var why = "older than the \(policy.keepFull) newest complete sets"
                if let d = policy.keepDays { why += " and not needed for the last \(Durations.describe(d * 86400))" }
                return Decision(label: s.label, delete: true, reason: why)
            }
        }
    }
}
