import JetStore

/// A backup into a repository: a new full set, or (incremental) the newest set extended,
/// unless it cannot or should not be, when a full set is taken instead. The decision and
/// its reason are returned and logged in the repository's event log.
public enum RepositoryBackup {
    public struct Options: Sendable {
        public var backup: BackupOptions
        public var incremental = false
        /// A full set is taken when the newest set's full backup is at least this old (seconds).
        public var fullEvery: Double?
        /// Seconds to wait for the repository lock; nil: fail at once.
        public var wait: Double?

        public init(backup: BackupOptions) { self.backup = backup }
    }

    public struct Result: Sendable {
        public var summary: BackupSummary
        public var label: SetLabel
        public var kind: BackupKind
        /// Why a full was taken when an incremental was asked for; nil otherwise.
        public var reason: String?
        public var setsInRepository: Int
    }

    /// The engine's refusals that mean "this chain cannot be extended" (no full backup recorded,
    /// the headers' last backup is not the set's end, a generation it needs was truncated)
    /// and the damage the set check finds: a full set is the way on.
    static let chainBroken: Set<JetError.Code> = [
        .missingFullBackup, .invalidBackupSequence, .missingFileToBackup, .missingLogFile,
        .readVerifyFailure, .logReadVerifyFailure, .givenLogFileHasBadSignature, .givenLogFileIsNotContiguous, .databaseCorrupted,
    ]

    public static func run(_ instance: Instance, repository repo: Repository, _ options: Options,
                           status: @escaping (BackupStatus) throws -> Void = { _ in }) throws -> Result {
        try run(repository: repo, options) { try JetBackupInstance.run(instance, $0, status: status) }
    }

    /// The same for an instance another process owns, through its control socket.
    public static func run(through owner: ControlClient, repository repo: Repository, _ options: Options,
                           status: @escaping (BackupStatus) throws -> Void = { _ in }) throws -> Result {
        try run(repository: repo, options) { try JetBackupInstance.run(through: owner, $0, status: status) }
    }

    /// The repository's decisions around one backup run (`backup`: into a set directory).
    static func run(repository repo: Repository, _ options: Options,
                    backup: (BackupOptions) throws -> BackupSummary) throws -> Result {
        var bo = options.backup
        bo.clock = repo.clock
        bo.fs = repo.fs
        let lock = try RepositoryLock.acquire(repo, owner: bo.owner, wait: options.wait, isCancelled: bo.isCancelled)
        defer { lock.release() }
        // Uploads a killed run left unfinished hold parts (and storage) but no object: no run of
        // this repository can be writing them while we hold its lock. Best effort: a key
        // without the right to list uploads can still back up.
        _ = try? repo.fs.objectStore?.discardUnfinishedUploads(under: repo.path)
        let scan = try repo.scan()
        let now = repo.clock.now()
        var reason: String?
        if options.incremental {
            if let newest = scan.newest {
                if newest.state == .complete, let m = newest.manifest {
                    let age = Double(now &- min(now, m.chain[0].startMicros)) / 1e6
                    if let every = options.fullEvery, age >= every {
                        reason = "the newest set \(newest.label) has a full backup \(Durations.describe(age)) old, and a full is due every "
                            + Durations.describe(every)
                    } else {
                        var inc = bo
                        inc.directory = newest.path
                        inc.incremental = true
                        do {
                            let s = try backup(inc)
                            repo.events.log("backup", "incremental backup extended set \(newest.label)", [
                                ("set", .string(newest.label.description)), ("type", .string("incremental")),
                                ("bytesStored", .int(s.bytesStored)),
                            ])
                            return Result(summary: s, label: newest.label, kind: .incremental, reason: nil,
                                          setsInRepository: try repo.scan().sets.count)
                        } catch let e as JetError where chainBroken.contains(e.code) {
                            reason = "the newest set \(newest.label) cannot be extended (\(e.code.name): \(e.message))"
                        }
                    }
                } else {
                    reason = "the newest set \(newest.label) is \(newest.state.rawValue)\(newest.problem.map { " (\($0))" } ?? "")"
                }
            } else {
                reason = "the repository holds no set yet"
            }
        }
        // A new label: now, or one second after the newest label if that is not earlier
        // (two runs in one second, or a clock set back), so labels stay unique and in order.
        var label = SetLabel(microseconds: now)
        if let last = scan.sets.last?.label, label <= last { label = SetLabel(seconds: last.seconds + 1) }
        let dir = repo.setPath(label)
        try repo.fs.createDirectory(dir)
        try repo.fs.syncDirectory(repo.path)
        var full = bo
        full.directory = dir
        full.incremental = false
        full.atomic = false
        do {
            let s = try backup(full)
            repo.events.log("backup", "full backup into new set \(label)" + (reason.map { ": \($0)" } ?? ""), [
                ("set", .string(label.description)), ("type", .string("full")), ("reason", reason.map { .string($0) } ?? .null),
                ("bytesStored", .int(s.bytesStored)),
            ])
            return Result(summary: s, label: label, kind: .full, reason: reason, setsInRepository: try repo.scan().sets.count)
        } catch {
            // The run undid what it wrote; the empty directory goes too (if something is
            // left, it is an incomplete set that the next expire removes).
            if ((try? repo.fs.list(dir)) ?? ["?"]).allSatisfy({ $0 == BackupSetLayout.lock }) {
                try? repo.fs.removeTree(dir)
                try? repo.fs.syncDirectory(repo.path)
            }
            let e = error as? JetError
            repo.events.log("backup-failed", "full backup into new set \(label) failed: \(e?.message ?? "\(error)")", [
                ("set", .string(label.description)), ("error", .string(e?.code.name ?? "\(error)")),
            ])
            throw error
        }
    }
}

/// Durations as the command line takes them (`90s`, `30m`, `2h`, `1d`, `1w`, or seconds)
/// and as messages print them.
public enum Durations {
    public static func parse(_ s: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 604_800)]
        for (u, f) in units where s.hasSuffix(u) {
            let n = s.dropLast(u.count)
            // "ms" before "s": "5ms" is not 5m followed by s.
            if u == "s" && n.hasSuffix("m") { continue }
            guard let v = Double(n), v >= 0, v.isFinite else { return nil }
            return v * f
        }
        guard let v = Double(s), v >= 0, v.isFinite else { return nil }
        return v
    }

    public static func describe(_ seconds: Double) -> String {
        let s = Int64(seconds.rounded(.down))
        if s % 86400 == 0 && s > 0 { return "\(s / 86400)d" }
        if s >= 86400 { return "\(s / 86400)d\((s % 86400) / 3600)h" }
        if s % 3600 == 0 && s > 0 { return "\(s / 3600)h" }
        if s >= 3600 { return "\(s / 3600)h\((s % 3600) / 60)m" }
        if s >= 60 { return "\(s / 60)m\(s % 60 == 0 ? "" : "\(s % 60)s")" }
        return "\(s)s"
    }
}
