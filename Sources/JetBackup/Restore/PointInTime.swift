import JetStore

/// Point-in-time restore (README "Point-in-time restore"): replay of a set stops at a time or
/// a log generation (the engine's `Instance.RecoveryStop`), which must lie between the set's
/// consistent point — the end of its full backup's logs, before which the images are not yet
/// consistent — and its end. Checked from the manifest alone, before anything is written.
extension BackupManifest {
    /// The set's consistent time: the latest commit time its full backup holds (µs since the
    /// epoch). nil for a set written before commit times were recorded.
    public var consistentMicros: UInt64? { chain[0].lastCommitMicros }

    /// The set's end: the latest commit time its logs hold. nil as `consistentMicros`.
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

    /// The part of the set a restore that stops at `stop` replays (after `checkStop`): for a
    /// generation, the generations up to it; for a time, the backups up to the first that
    /// holds a commit after it (replay stops there at the latest). What is left out is never
    /// replayed, so it is neither read nor needed intact: a damaged later generation does not
    /// keep a restore from the point before it. The engine's stop then ends replay exactly.
    public func needed(for stop: Instance.RecoveryStop) -> BackupManifest {
        let last: UInt32
        switch stop {
        case .generation(let g):
            last = g
        case .time(let t):
            guard let k = chain.firstIndex(where: { ($0.lastCommitMicros ?? .max) > t }) else { return self }
            last = chain[k].genHigh
        }
        var c = self
        c.files = files.filter { $0.kind != .log || ($0.generation ?? 0) <= last }
        c.chain = chain.filter { $0.genLow <= last }
        let n = c.chain.count - 1
        if c.chain[n].genHigh > last {
            c.chain[n].genHigh = last
            // Its recorded time covers generations left out: the part kept has none to check.
            c.chain[n].lastCommitMicros = nil
        }
        return c
    }

    /// A commit time as it is shown and typed: RFC 3339, UTC, microseconds.
    public static func time(_ us: UInt64) -> String { Clock.rfc3339(microseconds: us, fractionDigits: 6) }
}

extension BackupManifest.Backup {
    /// `lastCommitMicros` of a backup whose own log generations hold commits up to `own` (the
    /// latest; nil: none): for a full backup, `own`, or without a commit the creation time of
    /// its first generation (its images hold only commits made before that generation began);
    /// for an incremental, the later of `own` and the entry it follows. The latest rather than
    /// the last: replay stops at the first commit after a time, so a time at or after every
    /// commit the full backup holds never stops it inside them, even if the clock went back.
    static func lastCommit(_ type: BackupManifest.BackupType, own: UInt64?, firstCreation: UInt64?, previous: UInt64?) -> UInt64? {
        switch type {
        case .full: own ?? firstCreation
        case .incremental: [own, previous].compactMap { $0 }.max()
        }
    }
}

/// The check of the manifest's commit times in the pass verify and restore share: each
/// generation's commits are found as it is read, and every recorded `lastCommitMicros` must
/// be what the logs give (a restore to a time trusts them to keep replay past the full
/// backup's logs). Generations are fed in order from the full backup's first.
struct CommitTimeCheck {
    private var scanner = LogReader.CommitScanner()
    private var latest: [UInt32: UInt64] = [:]
    private var firstCreation: UInt64?

    mutating func feed(_ g: LogReader.Generation) throws {
        if firstCreation == nil { firstCreation = g.header.creationTime }
        if let t = try scanner.feed(g).map(\.time).max() { latest[g.header.generation] = t }
    }

    func check(_ m: BackupManifest, setDir: String) throws {
        var previous: UInt64?
        for (i, b) in m.chain.enumerated() {
            let own = (b.genLow...b.genHigh).compactMap { latest[$0] }.max()
            let expected = BackupManifest.Backup.lastCommit(b.type, own: own, firstCreation: firstCreation, previous: previous)
            if let recorded = b.lastCommitMicros, recorded != expected {
                throw JetError(.databaseCorrupted, "the manifest of the set in \(setDir) says backup \(i) of its chain holds commits up to "
                    + "\(BackupManifest.time(recorded)), its logs say \(expected.map(BackupManifest.time) ?? "none"); the manifest is damaged: "
                    + "use another backup")
            }
            previous = b.lastCommitMicros
        }
    }
}
