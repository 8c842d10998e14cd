import JetStore

/// Point-in-time restore (README "Point-in-time restore"): replay of a set stops at a time or
/// a log generation (the engine's `Instance.RecoveryStop`), which must lie between the set's
/// consistent point — the end of its full backup's logs, before which the images are not yet
/// consistent — and its end. Checked from the manifest alone, before anything is written.
extension BackupManifest {
    /// The set's consistent time: the newest commit its full backup holds (µs since the epoch).
    /// nil for a set written before commit times were recorded.
    public var consistentMicros: UInt64? { chain[0].lastCommitMicros }

    /// The set's end: the newest commit its logs hold. nil as `consistentMicros`.
    public var endMicros: UInt64? { chain.compactMap(\.lastCommitMicros).max() }

    /// Throws `JET_errInvalidParameter` unless a restore of the set in `setDir` may stop at `stop`.
    public func checkStop(_ stop: Instance.RecoveryStop, setDir: String) throws {
        let full = chain[0]
        switch stop {
        case .generation(let g):
            let range = "choose \(full.genHigh) to \(lastGeneration)"
            guard g >= full.genHigh else {
                throw JetError(.invalidParameter, "generation \(g) is before the consistent point of the set in \(setDir): its full backup "
                    + "ends at generation \(full.genHigh), and a restore needs at least \(full.genLow)-\(full.genHigh); \(range)")
            }
            guard g <= lastGeneration else {
                throw JetError(.invalidParameter, "generation \(g) is after the end of the set in \(setDir): it holds generations "
                    + "\(full.genLow)-\(lastGeneration); \(range)")
            }
        case .time(let t):
            guard let from = consistentMicros, let to = endMicros else {
                throw JetError(.invalidParameter, "the set in \(setDir) records no commit times (its full backup was taken by an earlier "
                    + "version of jetbackup), so a time cannot be checked against its consistent point; restore it to a log generation instead")
            }
            let range = "choose a time from \(Self.time(from)) to \(Self.time(to))"
            guard t >= from else {
                throw JetError(.invalidParameter, "\(Self.time(t)) is before the consistent point of the set in \(setDir): its full backup "
                    + "holds the commits up to \(Self.time(from)) (generations \(full.genLow)-\(full.genHigh)); \(range)")
            }
            guard t <= to else {
                throw JetError(.invalidParameter, "\(Self.time(t)) is after the end of the set in \(setDir): its last commit is at "
                    + "\(Self.time(to)) (generation \(lastGeneration) is its last); \(range), or restore the whole set")
            }
        }
    }

    /// A commit time as it is shown and typed: RFC 3339, UTC, microseconds.
    public static func time(_ us: UInt64) -> String { Clock.rfc3339(microseconds: us, fractionDigits: 6) }
}
