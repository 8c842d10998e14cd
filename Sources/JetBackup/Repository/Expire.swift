import JetStore

/// `expire`: applies `Retention` to a repository under its lock. A set is removed by first
/// renaming it to `.expiring-LABEL` (one atomic step: from then on it is no set) and then
/// deleting that tree; what a killed run leaves under that name is removed by the next one.
/// In object storage, which cannot rename, the first step is marking the set as a stopped
/// run's leftovers (`.jetbackup-incomplete`) and deleting its manifest: from then on it is an
/// incomplete set, which a killed run leaves for the next expire to remove.
public enum RepositoryExpire {
    public struct Result: Sendable {
        public var decisions: [Retention.Decision] = []
        public var removed: [SetLabel] = []
        public var setsLeft = 0
        public var skipped: [(name: String, reason: String)] = []
    }

    public static func run(_ repo: Repository, policy: Retention.Policy, dryRun: Bool, owner: String, wait: Double? = nil) throws -> Result {
        let fs = repo.fs
        let lock = try RepositoryLock.acquire(repo, owner: owner, wait: wait)
        defer { lock.release() }
        if !dryRun {
            try removeExpiring(repo)
            _ = try? fs.objectStore?.discardUnfinishedUploads(under: repo.path)
        }
        let scan = try repo.scan()
        var candidates: [Retention.Candidate] = []
        var claims: [SetLabel: any FileLock] = [:]
        defer { for c in claims.values { c.release() } }
        for s in scan.sets {
            var c = Retention.Candidate(label: s.label, state: s.state, endMicros: s.endMicros)
            // A backup run on the set's directory itself (not through the repository) holds its lock.
            let lp = FilePaths.join(s.path, BackupSetLayout.lock)
            if fs.exists(lp) && !fs.isSymlink(lp) {
                if let l = try? fs.lock(lp, owner: owner) { claims[s.label] = l } else { c.busy = true }
            }
            candidates.append(c)
        }
        var r = Result()
        r.skipped = scan.skipped
        r.decisions = Retention.plan(candidates, policy: policy, now: repo.clock.now())
        for d in r.decisions where d.delete {
            if dryRun { continue }
            let from = repo.setPath(d.label)
            if fs.objectStore == nil {
                let to = FilePaths.join(repo.path, Repository.expiringPrefix + d.label.description)
                try fs.rename(from, to)
                try fs.syncDirectory(repo.path)
                claims.removeValue(forKey: d.label)?.release()
                try fs.removeTree(to)
            } else {
                try BackupSetLayout.writeMarker(from, names: [], fs: fs)
                let mp = FilePaths.join(from, BackupSetLayout.manifest)
                if fs.exists(mp) { try fs.remove(mp) }
                try fs.objectStore?.throwIfQueryFailed()
                claims.removeValue(forKey: d.label)?.release()
                try removeObjects(from, fs: fs)
            }
            try fs.syncDirectory(repo.path)
            r.removed.append(d.label)
            repo.events.log("expire", "removed set \(d.label): \(d.reason)", [("set", .string(d.label.description)), ("reason", .string(d.reason))])
        }
        r.setsLeft = scan.sets.count - r.removed.count
        if !dryRun {
            repo.events.log("expire-run", "expire kept \(r.setsLeft) sets, removed \(r.removed.count)", [
                ("keepFull", .int(Int64(policy.keepFull))), ("keepDays", policy.keepDays.map { .double($0) } ?? .null),
            ])
        }
        return r
    }

    /// Removes a set in object storage whose manifest is gone: everything but the marker,
    /// then the marker, so a killed run leaves an incomplete set until the last step.
    static func removeObjects(_ dir: String, fs: any FileSystem) throws {
        for name in try fs.list(dir) where name != BackupSetLayout.marker {
            try fs.removeTree(FilePaths.join(dir, name))
        }
        try fs.remove(FilePaths.join(dir, BackupSetLayout.marker))
        try fs.removeDirectory(dir)
    }

    /// Finishes the removals a killed expire left.
    static func removeExpiring(_ repo: Repository) throws {
        for name in try repo.fs.list(repo.path) where name.hasPrefix(Repository.expiringPrefix) {
            try repo.fs.removeTree(FilePaths.join(repo.path, name))
            try repo.fs.syncDirectory(repo.path)
        }
    }
}
