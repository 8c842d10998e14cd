/// The messages of the control socket (`INSTANCE/control.sock`, README "Backups of a running
/// instance"): a client of the owner's uid asks the process that owns an instance for a
/// backup session or to run a command, and the owner answers.
///
/// On the wire each message is one frame: a little-endian u32 length, then that many bytes —
/// a type byte and the type's fields (little-endian integers; strings and byte strings as a
/// u32 length and bytes). A frame longer than `maximumFrame` is refused before anything of it
/// is buffered; a field that runs past its frame is `JET_errInvalidParameter`. `decode` never
/// traps on any input (the fuzz target `control` attacks it).
public enum ControlMessage: Sendable, Equatable {
    // Client to owner.
    /// The first message of a connection: the protocol version the client speaks.
    case hello(version: UInt32, pid: UInt32)
    case backupBegin(BackupSession.Kind)
    case readDatabase(name: String, offset: Int64, length: UInt32)
    case rollLog
    case generations(from: UInt32?, through: UInt32)
    case readLog(generation: UInt32, previousCreation: UInt64?)
    case currentGeneration
    /// The set is durable where the client wrote it: record the backup, then truncate.
    case complete(low: UInt32, high: UInt32)
    case abort
    /// An event of the client's backup run, for the owner's `events.log` (data: a JSON object).
    case event(id: Int32, level: String, message: String, data: String)
    /// Run a command of the tool above the engine in the owner (opaque to the engine).
    case command(argv: [String], cwd: String, environment: [String], stderrIsTerminal: Bool)
    case stdinData([UInt8])
    case interrupt

    // Owner to client.
    case welcome(version: UInt32, pid: UInt32, instance: String)
    case error(code: Int32, message: String)
    case sessionStarted(SessionInfo)
    case data([UInt8])
    case number(UInt32)
    case range(low: UInt32, high: UInt32)
    case noRange
    case logFile(generation: UInt32, fileName: String, records: UInt32, size: UInt32)
    case ok
    case stdout([UInt8])
    case stderr([UInt8])
    case needStdin
    case exit(Int32)

    /// A session's description, as `BackupSession` gives it.
    public struct SessionInfo: Sendable, Equatable {
        public var kind: BackupSession.Kind
        public var start: LogPosition
        public var startTime: UInt64
        public var logSignature: Signature
        public var previousEnd: UInt32?
        public var pageSize: UInt32
        public var logFileSize: UInt32
        public var databases: [BackupSession.Database]
    }

    /// The version of this protocol; a peer speaking another is refused at `hello`.
    public static let version: UInt32 = 1
    /// The largest frame either side accepts (a database chunk or a slice of a log is at
    /// most `maximumChunk`).
    public static let maximumFrame = 5 << 20
    public static let maximumChunk = 4 << 20

    /// The type byte of `.data`, which `ControlSocket.sendData`/`receiveData` frame themselves.
    static let dataTag = Tag.data.rawValue

    private enum Tag: UInt8 {
        case hello = 1, backupBegin = 10, readDatabase, rollLog, generations, readLog, currentGeneration, complete, abort, event
        case command = 20, stdinData, interrupt
        case welcome = 40, error, sessionStarted, data, number, range, noRange, logFile, ok, stdout, stderr, needStdin, exit
    }

    public func encode() -> [UInt8] {
        var w = WireWriter()
        w.u32(0) // the frame length, set below
        switch self {
        case .hello(let v, let pid): w.tag(Tag.hello.rawValue); w.u32(v); w.u32(pid)
        case .backupBegin(let k): w.tag(Tag.backupBegin.rawValue); w.u8(k == .full ? 0 : 1)
        case .readDatabase(let n, let o, let l): w.tag(Tag.readDatabase.rawValue); w.string(n); w.u64(UInt64(bitPattern: o)); w.u32(l)
        case .rollLog: w.tag(Tag.rollLog.rawValue)
        case .generations(let f, let t): w.tag(Tag.generations.rawValue); w.optional32(f); w.u32(t)
        case .readLog(let g, let p): w.tag(Tag.readLog.rawValue); w.u32(g); w.optional64(p)
        case .currentGeneration: w.tag(Tag.currentGeneration.rawValue)
        case .complete(let l, let h): w.tag(Tag.complete.rawValue); w.u32(l); w.u32(h)
        case .abort: w.tag(Tag.abort.rawValue)
        case .event(let id, let level, let m, let d): w.tag(Tag.event.rawValue); w.u32(UInt32(bitPattern: id)); w.string(level); w.string(m); w.string(d)
        case .command(let argv, let cwd, let env, let tty):
            w.tag(Tag.command.rawValue); w.strings(argv); w.string(cwd); w.strings(env); w.u8(tty ? 1 : 0)
        case .stdinData(let b): w.tag(Tag.stdinData.rawValue); w.bytes(b)
        case .interrupt: w.tag(Tag.interrupt.rawValue)
        case .welcome(let v, let pid, let i): w.tag(Tag.welcome.rawValue); w.u32(v); w.u32(pid); w.string(i)
        case .error(let c, let m): w.tag(Tag.error.rawValue); w.u32(UInt32(bitPattern: c)); w.string(m)
        case .sessionStarted(let s):
            w.tag(Tag.sessionStarted.rawValue)
            w.u8(s.kind == .full ? 0 : 1); w.u64(s.start.rawValue); w.u64(s.startTime)
            w.u64(s.logSignature.random); w.u64(s.logSignature.time); w.optional32(s.previousEnd)
            w.u32(s.pageSize); w.u32(s.logFileSize); w.u32(UInt32(s.databases.count))
            for d in s.databases {
                w.string(d.name); w.string(d.fileName); w.u32(d.dbid); w.u64(d.signature.random); w.u64(d.signature.time)
                w.u32(UInt32(d.pageSize)); w.u64(UInt64(bitPattern: d.size)); w.backupInfo(d.lastFull); w.backupInfo(d.lastIncremental)
            }
        case .data(let b): w.tag(Tag.data.rawValue); w.bytes(b)
        case .number(let n): w.tag(Tag.number.rawValue); w.u32(n)
        case .range(let l, let h): w.tag(Tag.range.rawValue); w.u32(l); w.u32(h)
        case .noRange: w.tag(Tag.noRange.rawValue)
        case .logFile(let g, let n, let r, let s): w.tag(Tag.logFile.rawValue); w.u32(g); w.string(n); w.u32(r); w.u32(s)
        case .ok: w.tag(Tag.ok.rawValue)
        case .stdout(let b): w.tag(Tag.stdout.rawValue); w.bytes(b)
        case .stderr(let b): w.tag(Tag.stderr.rawValue); w.bytes(b)
        case .needStdin: w.tag(Tag.needStdin.rawValue)
        case .exit(let c): w.tag(Tag.exit.rawValue); w.u32(UInt32(bitPattern: c))
        }
        let n = UInt32(w.bytes.count - 4)
        withUnsafeBytes(of: n.littleEndian) { for i in 0..<4 { w.bytes[i] = $0[i] } }
        return w.bytes
    }

    /// Decodes a frame's body (without its length prefix).
    public static func decode(_ body: [UInt8]) throws -> ControlMessage {
        try body.withUnsafeBytes { p in
            var r = ByteReader(p, corrupt: JetError(.invalidParameter, "a control message is truncated or malformed"))
            let raw = try r.u8()
            guard let tag = Tag(rawValue: raw) else {
                throw JetError(.invalidParameter, "unknown control message type \(raw)")
            }
            let m: ControlMessage
            switch tag {
            case .hello: m = .hello(version: try r.u32(), pid: try r.u32())
            case .backupBegin: m = .backupBegin(try r.kind())
            case .readDatabase: m = .readDatabase(name: try r.wireString(), offset: Int64(bitPattern: try r.u64()), length: try r.u32())
            case .rollLog: m = .rollLog
            case .generations: m = .generations(from: try r.optional32(), through: try r.u32())
            case .readLog: m = .readLog(generation: try r.u32(), previousCreation: try r.optional64())
            case .currentGeneration: m = .currentGeneration
            case .complete: m = .complete(low: try r.u32(), high: try r.u32())
            case .abort: m = .abort
            case .event:
                m = .event(id: Int32(bitPattern: try r.u32()), level: try r.wireString(), message: try r.wireString(), data: try r.wireString())
            case .command:
                m = .command(argv: try r.strings(), cwd: try r.wireString(), environment: try r.strings(), stderrIsTerminal: try r.u8() != 0)
            case .stdinData: m = .stdinData(try r.wireBytes())
            case .interrupt: m = .interrupt
            case .welcome: m = .welcome(version: try r.u32(), pid: try r.u32(), instance: try r.wireString())
            case .error: m = .error(code: Int32(bitPattern: try r.u32()), message: try r.wireString())
            case .sessionStarted:
                let kind = try r.kind()
                let start = LogPosition(rawValue: try r.u64())
                let time = try r.u64()
                let sig = Signature(random: try r.u64(), time: try r.u64())
                let prev = try r.optional32()
                let ps = try r.u32(), lfs = try r.u32()
                let n = try r.u32()
                // Each database takes at least 60 bytes: a count beyond what is left is a lie.
                guard Int(n) <= r.remaining / 60 else { throw r.corrupt }
                var dbs: [BackupSession.Database] = []
                for _ in 0..<n {
                    dbs.append(BackupSession.Database(
                        name: try r.wireString(), fileName: try r.wireString(), dbid: try r.u32(),
                        signature: Signature(random: try r.u64(), time: try r.u64()), pageSize: Int(try r.u32()),
                        size: Int64(bitPattern: try r.u64()), lastFull: try r.backupInfo(), lastIncremental: try r.backupInfo()))
                }
                m = .sessionStarted(SessionInfo(kind: kind, start: start, startTime: time, logSignature: sig, previousEnd: prev,
                                                pageSize: ps, logFileSize: lfs, databases: dbs))
            case .data: m = .data(try r.wireBytes())
            case .number: m = .number(try r.u32())
            case .range: m = .range(low: try r.u32(), high: try r.u32())
            case .noRange: m = .noRange
            case .logFile: m = .logFile(generation: try r.u32(), fileName: try r.wireString(), records: try r.u32(), size: try r.u32())
            case .ok: m = .ok
            case .stdout: m = .stdout(try r.wireBytes())
            case .stderr: m = .stderr(try r.wireBytes())
            case .needStdin: m = .needStdin
            case .exit: m = .exit(Int32(bitPattern: try r.u32()))
            }
            guard r.remaining == 0 else {
                throw JetError(.invalidParameter, "a control message of type \(raw) has \(r.remaining) bytes too many")
            }
            return m
        }
    }
}

/// Builds a frame.
struct WireWriter {
    var bytes: [UInt8] = []
    mutating func tag(_ t: UInt8) { bytes.append(t) }
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func bytes(_ b: [UInt8]) { u32(UInt32(b.count)); bytes.append(contentsOf: b) }
    mutating func string(_ s: String) { bytes(Array(s.utf8)) }
    mutating func strings(_ a: [String]) { u32(UInt32(a.count)); for s in a { string(s) } }
    mutating func optional32(_ v: UInt32?) { u8(v == nil ? 0 : 1); u32(v ?? 0) }
    mutating func optional64(_ v: UInt64?) { u8(v == nil ? 0 : 1); u64(v ?? 0) }
    mutating func backupInfo(_ i: DatabaseHeader.BackupInfo?) {
        u8(i == nil ? 0 : 1)
        u32(i?.genLow ?? 0); u32(i?.genHigh ?? 0); u64(i?.position.rawValue ?? 0); u64(i?.time ?? 0)
    }
}

extension ByteReader {
    mutating func wireBytes() throws -> [UInt8] { Array(try raw(Int(try u32()))) }
    mutating func wireString() throws -> String { String(decoding: try raw(Int(try u32())), as: UTF8.self) }
    mutating func strings() throws -> [String] {
        let n = Int(try u32())
        guard n <= remaining / 4 else { throw corrupt }
        return try (0..<n).map { _ in try wireString() }
    }
    mutating func flag() throws -> Bool {
        switch try u8() {
        case 0: return false
        case 1: return true
        default: throw corrupt
        }
    }
    mutating func optional32() throws -> UInt32? { let has = try flag(); let v = try u32(); return has ? v : nil }
    mutating func optional64() throws -> UInt64? { let has = try flag(); let v = try u64(); return has ? v : nil }
    mutating func kind() throws -> BackupSession.Kind { try flag() ? .incremental : .full }
    mutating func backupInfo() throws -> DatabaseHeader.BackupInfo? {
        let has = try flag()
        let i = DatabaseHeader.BackupInfo(genLow: try u32(), genHigh: try u32(), position: LogPosition(rawValue: try u64()), time: try u64())
        return has ? i : nil
    }
}
