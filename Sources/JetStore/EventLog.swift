/// The instance's event log, `events.log`: one JSON object a line with `time` (UTC,
/// RFC 3339), `id` (ESE's event ids), `level`, `message`, `data`. Appends are whole lines
/// written in one call and fsynced; a failure to log never fails the operation it reports.
public final class EventLog: @unchecked Sendable {
    public enum Level: String, Sendable { case info, warning, error }

    /// ESE event ids (the README lists them), and ours for recovery and restore.
    public enum ID: Int, Sendable {
        case fullBackupStart = 210
        case incrementalBackupStart = 211
        case backupSuccess = 213
        case backupFailure = 214
        case backupAborted = 215
        case fileStart = 220
        case fileEnd = 221
        case logRangeCopied = 223
        case logsTruncated = 224
        case nothingToTruncate = 225
        case recoveryStart = 300
        case recoveryEnd = 301
        case restoreStart = 902
        case restoreEnd = 903
        case restoreFailure = 904
        case instanceStart = 102
        case instanceStop = 103
    }

    let fs: any FileSystem
    let path: String
    private let lock = SpinLock()

    public init(fs: any FileSystem, path: String) {
        self.fs = fs
        self.path = path
    }

    public func log(_ id: ID, _ message: String, _ data: [(String, JSONValue)] = [], level: Level = .info) {
        let line = JSONValue.object([
            ("time", .string(Clock.now())), ("id", .int(Int64(id.rawValue))), ("level", .string(level.rawValue)),
            ("message", .string(message)), ("data", .object(data)),
        ]).serialized() + "\n"
        lock.withLock {
            do {
                let f: any StorageFile = fs.exists(path) ? try fs.open(path, .readWrite) : try fs.open(path, .createNew)
                defer { f.close() }
                let end = try f.size()
                try Array(line.utf8).withUnsafeBytes { try f.write(at: end, $0) }
                try f.sync()
            } catch {
                // The event log is a report; the work it reports has its own errors.
            }
        }
    }

    /// The last `limit` lines (raw JSON text), oldest first.
    public func lines(limit: Int) throws -> [String] {
        guard fs.exists(path) else { return [] }
        let bytes = try fs.readAll(path)
        var lines = bytes.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
        if lines.count > limit { lines.removeFirst(lines.count - limit) }
        return lines
    }
}
