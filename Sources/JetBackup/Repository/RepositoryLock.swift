#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// The repository's lock, `.jetbackup-repository-lock`: held by a repository backup for its
/// whole run and by expire, so two runs never interleave (a backup never sees a set half
/// removed, expire never removes the set a backup extends). flock: a holder that dies lets
/// go with its last descriptor, so a lock left by a killed run never blocks.
public struct RepositoryLock: Sendable {
    let handle: any FileLock

    public static func acquire(_ repo: Repository, owner: String, wait: Double? = nil,
                               isCancelled: () -> Bool = { false }) throws -> RepositoryLock {
        let p = FilePaths.join(repo.path, Repository.lockName)
        return try LockWait.retrying(for: wait, isCancelled: isCancelled) {
            do {
                return RepositoryLock(handle: try repo.fs.lock(p, owner: owner))
            } catch let e as JetError where e.code == .fileAccessDenied {
                let who = PosixFileSystem.describeHolder(ArraySlice((try? repo.fs.readAll(p)) ?? []))
                throw JetError(.backupInProgress, "repository \(repo.path) is in use by another run (\(who)); nothing was changed: "
                    + "wait for it to finish")
            }
        }
    }

    public func release() { handle.release() }
}

/// Waiting for a lock instead of failing at once: the attempt is repeated while it fails
/// because another process holds the lock (`JET_errFileAccessDenied`, `JET_errBackupInProgress`),
/// with a growing pause (50 ms doubling to 2 s), until `seconds` have passed; then the last
/// refusal is thrown. nil: one attempt (the default of every command).
public enum LockWait {
    public static let busy: Set<JetError.Code> = [.fileAccessDenied, .backupInProgress]

    /// `isCancelled` is asked at least every 50 ms while waiting (a signal): the wait then
    /// ends with `JET_errTermInProgress`, nothing done.
    public static func retrying<T>(for seconds: Double?, isCancelled: () -> Bool = { false }, _ attempt: () throws -> T) throws -> T {
        guard let seconds, seconds > 0 else { return try attempt() }
        let deadline = Clock.monotonicSeconds() + seconds
        var pause = 0.05
        while true {
            do {
                return try attempt()
            } catch let e as JetError where busy.contains(e.code) {
                let left = deadline - Clock.monotonicSeconds()
                guard left > 0 else {
                    throw JetError(e.code, e.message + " (waited \(format(seconds)))")
                }
                let wake = Clock.monotonicSeconds() + min(pause, left)
                while Clock.monotonicSeconds() < wake {
                    if isCancelled() {
                        throw JetError(.termInProgress, "interrupted (signal) while waiting: \(e.message); nothing was done")
                    }
                    usleep(UInt32(max(1_000, min(50_000, (wake - Clock.monotonicSeconds()) * 1_000_000))))
                }
                pause = min(pause * 2, 2)
            }
        }
    }

    static func format(_ s: Double) -> String { s >= 1 && s == s.rounded() ? "\(Int(s)) s" : "\(s) s" }
}
