/// The instance's event log, `events.log`: one JSON object a line with `time` (UTC,
/// RFC 3339), `id` (ESE's event ids), `level`, `message`, `data`. Appends are whole lines
/// written in one call, not fsynced one by one: the log is a report, which a killed process
/// keeps whole (only a power loss may drop its last lines, as with syslog); an fsync per
/// event cost a backup 2–3 ms. A failure to log never fails the operation it reports.
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
        /// A client of the control socket: a backup session through the owner, a refused peer.
        case controlSessionStart = 230
        case controlSessionEnd = 231
        case controlRefused = 232
    }

    let fs: any FileSystem
    let path: String
    private let lock = Lock()
    /// Set for a backup run in another process than the instance's owner: its events go to
    /// the owner, which writes them (one writer per file: appends of two processes could
    /// overwrite each other).
    private let forward: (@Sendable (_ id: Int, _ level: String, _ message: String, _ data: String) -> Void)?

    public init(fs: any FileSystem, path: String) {
        self.fs = fs
        self.path = path
        self.forward = nil
    }

    /// An event log whose events are handed to `forward` instead of written here.
    public init(forward: @escaping @Sendable (_ id: Int, _ level: String, _ message: String, _ data: String) -> Void) {
        self.fs = MemoryFileSystem()
        self.path = "/forwarded-events"
        self.forward = forward
    }

    public func log(_ id: ID, _ message: String, _ data: [(String, JSONValue)] = [], level: Level = .info) {
        let d = JSONValue.object(data).serialized()
        if let forward {
            forward(id.rawValue, level.rawValue, message, d)
            return
        }
        record(id: id.rawValue, level: level.rawValue, message: message, data: d)
    }

    /// Writes an event whose data is already serialized (a JSON object on one line), as a
    /// client of the owner hands it over. Data that is not one line of an object is dropped.
    public func record(id: Int, level: String, message: String, data: String) {
        let validData = data.hasPrefix("{") && data.hasSuffix("}") && !data.contains("\n") ? data : "{}"
        let head = JSONValue.object([
            ("time", .string(Clock.now())), ("id", .int(Int64(id))), ("level", .string(Level(rawValue: level)?.rawValue ?? "info")),
            ("message", .string(message)),
        ]).serialized()
        let line = String(head.dropLast()) + ",\"data\":" + validData + "}\n"
        lock.withLock {
            // The event log is a report; the work it reports has its own errors.
            try? Self.append(line, to: path, fs: fs, sync: false)
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

    /// Appends one line to a JSON-lines log file (created if missing); `sync`: fsynced too.
    public static func append(_ line: String, to path: String, fs: any FileSystem, sync: Bool = true) throws {
        let f: any StorageFile = fs.exists(path) ? try fs.open(path, .readWrite) : try fs.open(path, .createNew)
        defer { f.close() }
        let end = try f.size()
        try Array(line.utf8).withUnsafeBytes { try f.write(at: end, $0) }
        if sync { try f.sync() }
    }
}
