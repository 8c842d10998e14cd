import Foundation
import Testing
@testable import JetStore

/// The control socket's messages and the library's side of it: every message decodes to
/// itself, no input traps the decoder, an instance opened read-write serves (and opting out
/// does not), and a backup session through the socket hands out what the local one does.
@Suite struct ControlTests {
    static let samples: [ControlMessage] = [
        .hello(version: 1, pid: 42), .backupBegin(.full), .backupBegin(.incremental),
        .readDatabase(name: "app", offset: 8192 * 7, length: 1 << 20), .rollLog, .generations(from: nil, through: 9),
        .generations(from: 3, through: 9), .readLog(generation: 5, previousCreation: nil), .readLog(generation: 5, previousCreation: 77),
        .currentGeneration, .complete(low: 2, high: 9), .abort, .event(id: 213, level: "info", message: "m", data: "{\"a\":1}"),
        .command(argv: ["get", "app", "k"], cwd: "/tmp", environment: ["JETBACKUP_X=1"], stderrIsTerminal: true),
        .stdinData([1, 2, 3]), .interrupt, .welcome(version: 1, pid: 7, instance: "/i"), .error(code: -505, message: "busy"),
        .sessionStarted(.init(kind: .incremental, start: LogPosition(generation: 3, offset: 64), startTime: 99,
                              logSignature: Signature(random: 1, time: 2), previousEnd: 2, pageSize: 8192, logFileSize: 1 << 20,
                              databases: [BackupSession.Database(name: "app", fileName: "app.edb", dbid: 1, signature: Signature(random: 3, time: 4),
                                                                 pageSize: 8192, size: 81920,
                                                                 lastFull: DatabaseHeader.BackupInfo(genLow: 1, genHigh: 2, position: .zero, time: 5),
                                                                 lastIncremental: nil)])),
        .data([9, 8, 7]), .number(12), .range(low: 1, high: 3), .noRange,
        .logFile(generation: 4, fileName: "edb00000004.log", records: 10, size: 65536), .ok, .stdout([65]), .stderr([66]), .needStdin, .exit(75),
    ]

    @Test func everyMessageDecodesToItself() throws {
        for m in Self.samples {
            let frame = m.encode()
            let n = Int(frame[0]) | Int(frame[1]) << 8 | Int(frame[2]) << 16 | Int(frame[3]) << 24
            #expect(n == frame.count - 4)
            #expect(try ControlMessage.decode(Array(frame[4...])) == m, "\(m)")
        }
    }

    /// Truncated, extended and bit-flipped frames of every message, and random bytes: an
    /// error or a message, never a trap (the fuzz target `control` goes further).
    @Test func damagedMessagesAreErrorsNotTraps() {
        var rng = SystemRandomNumberGenerator()
        var refused = 0
        for m in Self.samples {
            let body = Array(m.encode()[4...])
            for cut in 0..<body.count where (try? ControlMessage.decode(Array(body[..<cut]))) == nil { refused += 1 }
            #expect((try? ControlMessage.decode(body + [0])) == nil, "\(m): a byte too many was accepted")
            for _ in 0..<50 {
                var b = body
                b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                _ = try? ControlMessage.decode(b)
            }
        }
        for _ in 0..<2000 {
            _ = try? ControlMessage.decode((0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        #expect(refused > Self.samples.count)
    }

    static func instance() throws -> String {
        var t = Array("/tmp/jctl-XXXXXX".utf8CString)
        let dir = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        var p = InstanceParameters()
        p.logFileSize = 64 * 1024
        try Instance.create(at: dir + "/i", parameters: p)
        return dir
    }

    /// Opened read-write, the instance listens on control.sock (0600) and serves a backup
    /// session whose pages and logs are the local session's; closed, the socket is gone.
    /// `serveControl: false` and read-only opens do not listen.
    @Test func readWriteOpenServesAndOptingOutDoesNot() throws {
        let dir = try Self.instance()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let i = dir + "/i"
        let sock = i + "/" + FileNames.controlSocket
        var inst = try Instance.open(at: i, owner: "t")
        try inst.createDatabase("app")
        for k in 0..<300 { _ = try inst.commit([.put(database: "app", key: Array("k\(k)".utf8), value: [UInt8](repeating: 7, count: 400))]) }
        var st = stat()
        #expect(lstat(sock, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK && (st.st_mode & 0o777) == 0o600)
        let client = try #require(try ControlClient.connect(instance: i))
        let remote = try RemoteBackupSession.begin(.full, client: client)
        #expect(remote.databases.map(\.name) == ["app"])
        var pages = [UInt8](repeating: 0, count: 1 << 20)
        let n = try pages.withUnsafeMutableBytes { try remote.readDatabase("app", at: 0, into: $0) }
        #expect(n > 0 && n % remote.pageSize == 0)
        let last = try remote.rollLog()
        let gens = try remote.generations(through: last)
        let log = try remote.readLog(gens.lowerBound)
        #expect(log.bytes == (try PosixFileSystem().readAll(i + "/" + FileNames.archivedLog(gens.lowerBound))))
        // The session holds the instance's one backup slot until it ends.
        #expect(throws: JetError.self) { _ = try inst.beginBackup(.full) }
        remote.abort()
        client.close()
        try inst.close()
        #expect(lstat(sock, &st) != 0)
        inst = try Instance.open(at: i, owner: "t", serveControl: false)
        #expect(lstat(sock, &st) != 0 && inst.controlServer == nil)
        try inst.close()
        inst = try Instance.open(at: i, mode: .readOnly, owner: "t")
        #expect(lstat(sock, &st) != 0)
        try inst.close()
    }

    /// A client that disappears mid-session: the owner aborts the session (no backup recorded)
    /// and the next session starts.
    @Test func droppedConnectionAbortsTheSession() throws {
        let dir = try Self.instance()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let i = dir + "/i"
        let inst = try Instance.open(at: i, owner: "t")
        try inst.createDatabase("app")
        let client = try #require(try ControlClient.connect(instance: i))
        let remote = try RemoteBackupSession.begin(.full, client: client)
        _ = try remote.rollLog()
        client.socket.shutdown()
        var started: BackupSession?
        for _ in 0..<200 where started == nil {
            started = try? inst.beginBackup(.full)
            if started == nil { usleep(10_000) }
        }
        #expect(started != nil)
        started?.abort()
        #expect(!(try String(contentsOfFile: i + "/events.log", encoding: .utf8)).contains("completed"))
        try inst.close()
    }
}
