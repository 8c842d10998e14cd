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

    /// Two threads send large frames on one socket at once (a backup's events and its abort):
    /// the peer receives every frame whole. The socket's send buffer is small, so each frame
    /// goes out in many partial sends; without a lock held per frame they interleave.
    @Test func framesFromTwoThreadsNeverInterleave() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let a = ControlSocket(fd: fds[0]), b = ControlSocket(fd: fds[1])
        a.setSendBuffer(4096)
        let perThread = 40
        @Sendable func message(_ thread: Int, _ i: Int) -> ControlMessage {
            .event(id: Int32(thread * 1000 + i), level: "info", message: String(repeating: Character(thread == 0 ? "a" : "b"), count: 300_000 + i),
                   data: "{}")
        }
        let group = DispatchGroup()
        for t in 0..<2 {
            group.enter()
            Thread {
                for i in 0..<perThread {
                    // A peer that fell out of step stops reading: give up quickly.
                    do { try a.send(message(t, i), timeout: 3) } catch { break }
                }
                group.leave()
            }.start()
        }
        var got: [Int32: ControlMessage] = [:]
        var bad = 0
        for _ in 0..<(2 * perThread) {
            do {
                let m = try b.receive(timeout: 3, frameTimeout: 3)
                if case .event(let id, _, _, _) = m { got[id] = m } else { bad += 1 }
            } catch {
                bad += 1
                break
            }
        }
        b.shutdown()
        group.wait()
        #expect(bad == 0, "\(bad) frames arrived damaged or out of step")
        let whole = (0..<2).flatMap { t in (0..<perThread).map { i in got[Int32(t * 1000 + i)] == message(t, i) } }.filter { $0 }.count
        #expect(whole == 2 * perThread, "\(2 * perThread - whole) frames missing or damaged")
        a.close(); b.close()
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

    /// The socket is made 0600 without touching the umask, which is the whole process's: a
    /// directory another thread creates meanwhile gets its usual mode (under a changed umask
    /// it came out 0600, without search rights: found by two tests failing together).
    @Test func listeningLeavesOtherThreadsFilesAlone() throws {
        let dir = try Self.instance()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mask = umask(0o022)
        umask(mask)
        let want = 0o777 & ~mask
        let done = AtomicFlag(), finished = AtomicFlag(), wrong = AtomicFlag()
        #expect(mkdir(dir + "/m", 0o700) == 0)
        Threads.start(name: "mkdir", stackSize: 1 << 20) {
            var k = 0
            while !done.isSet {
                let d = dir + "/m/d\(k % 64)"
                _ = rmdir(d)
                if mkdir(d, 0o777) == 0 {
                    var st = stat()
                    if stat(d, &st) == 0 && (st.st_mode & 0o777) != want { _ = wrong.setOnce() }
                }
                k += 1
            }
            _ = finished.setOnce()
        }
        for _ in 0..<1000 {
            let s = try ControlSocket.listen(dir + "/s.sock")
            s.close()
        }
        _ = done.setOnce()
        while !finished.isSet { usleep(1000) }
        #expect(!wrong.isSet, "a directory was created with another mode than \(String(want, radix: 8))")
        var st = stat()
        #expect(lstat(dir + "/s.sock", &st) == 0 && (st.st_mode & 0o777) == 0o600)
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
        #expect(log.bytes.array == (try PosixFileSystem().readAll(i + "/" + FileNames.archivedLog(gens.lowerBound))))
        // Received page-aligned, as a mapped generation is: a backup writes it out directly.
        #expect(log.bytes.withUnsafeBytes { Int(bitPattern: $0.baseAddress) % 4096 } == 0)
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

/// The client's side of a database read through the owner, against a scripted owner: the
/// next chunks are asked for before the current one's answer is read, every answer lands in
/// the read it belongs to (also when another request or another offset comes between), and an
/// answer larger than asked for is refused, never written past the buffer.
@Suite struct RemoteReadAheadTests {
    static let pageSize = 8192
    static let chunk = 1 << 20

    /// An owner that answers in order: a database chunk is its offset's pattern (clipped at
    /// `size`), `rollLog` is 7. It records the requests, and holds the first answer until
    /// `8` requests arrived or a second passed.
    final class ScriptedOwner: @unchecked Sendable {
        let dir: String
        let size: Int64
        let oversize: Bool
        private let state = Condition()
        private var requests: [ControlMessage] = []
        private(set) var queuedBeforeFirstAnswer = 0
        private var listener: ControlSocket?

        init(size: Int64, oversize: Bool = false) throws {
            var t = Array("/tmp/jrah-XXXXXX".utf8CString)
            dir = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
            self.size = size
            self.oversize = oversize
            let l = try ControlSocket.listen(ControlSocket.path(instance: dir))
            listener = l
            Thread { [self] in serve(l) }.start()
        }

        var seen: [ControlMessage] { state.withLock { requests } }

        /// Pages (offset is page-aligned) that each start with their page number and are filled
        /// with a byte of it: every chunk differs from every other.
        static func pattern(_ offset: Int64, _ count: Int) -> [UInt8] {
            var out = [UInt8]()
            out.reserveCapacity(count)
            var pgno = UInt64(offset) / 8192
            while out.count < count {
                var page = [UInt8](repeating: UInt8(truncatingIfNeeded: pgno &* 31 &+ 7), count: 8192)
                withUnsafeBytes(of: pgno.littleEndian) { for k in 0..<8 { page[k] = $0[k] } }
                out += page.prefix(count - out.count)
                pgno += 1
            }
            return out
        }

        private func serve(_ l: ControlSocket) {
            guard let c = l.accept() else { return }
            defer { c.close() }
            do {
                guard case .hello = try c.receive(timeout: 10) else { return }
                try c.send(.welcome(version: ControlMessage.version, pid: 1, instance: dir))
                guard case .backupBegin = try c.receive(timeout: 10) else { return }
                let db = BackupSession.Database(name: "app", fileName: "app.edb", dbid: 1, signature: Signature(random: 1, time: 2),
                                                pageSize: RemoteReadAheadTests.pageSize, size: size, lastFull: nil, lastIncremental: nil)
                try c.send(.sessionStarted(.init(kind: .full, start: LogPosition(generation: 1, offset: 0), startTime: 0,
                                                 logSignature: Signature(random: 1, time: 2), previousEnd: nil, pageSize: 8192,
                                                 logFileSize: 1 << 20, databases: [db])))
                var first = true
                while true {
                    let m = try c.receive(timeout: 10)
                    state.withLock { requests.append(m) }
                    if first, case .readDatabase = m {
                        first = false
                        // The requests the client sent before it read anything.
                        let deadline = Clock.monotonicSeconds() + 1
                        var pending: [ControlMessage] = []
                        while pending.count + 1 < RemoteBackupSession.readAhead && Clock.monotonicSeconds() < deadline {
                            var pfd = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
                            if poll(&pfd, 1, 50) > 0 { pending.append(try c.receive(timeout: 10)) }
                        }
                        state.withLock { requests += pending; queuedBeforeFirstAnswer = 1 + pending.count }
                        try answer(m, c)
                        for p in pending { try answer(p, c) }
                        continue
                    }
                    if case .abort = m { try c.send(.ok); return }
                    try answer(m, c)
                }
            } catch {}
        }

        private func answer(_ m: ControlMessage, _ c: ControlSocket) throws {
            switch m {
            case .readDatabase(_, let offset, let length):
                let n = max(0, min(Int64(length), size - offset))
                try c.send(.data(Self.pattern(offset, Int(n) + (oversize ? 8192 : 0))))
            case .rollLog: try c.send(.number(7))
            default: try c.send(.error(code: JetError.Code.invalidParameter.rawValue, message: "not scripted"))
            }
        }

        func stop() {
            listener?.shutdown()
            listener?.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func nextChunksAreAskedForBeforeTheCurrentAnswerIsRead() throws {
        let size = Int64(12 * Self.chunk + 5 * Self.pageSize)
        let owner = try ScriptedOwner(size: size)
        defer { owner.stop() }
        let client = try #require(try ControlClient.connect(instance: owner.dir))
        defer { client.close() }
        let remote = try RemoteBackupSession.begin(.full, client: client)
        var buf = [UInt8](repeating: 0, count: Self.chunk)
        var offset: Int64 = 0
        var reads = 0
        while true {
            let n = try buf.withUnsafeMutableBytes { try remote.readDatabase("app", at: offset, into: $0) }
            #expect(Array(buf[0..<n]) == ScriptedOwner.pattern(offset, n), "chunk at \(offset)")
            offset += Int64(n)
            reads += 1
            if reads == 3 {
                // Another request between two chunks: the unused answers are dropped first.
                #expect(try remote.rollLog() == 7)
            }
            if n < Self.chunk { break }
        }
        #expect(offset == size)
        #expect(owner.queuedBeforeFirstAnswer == RemoteBackupSession.readAhead)
        // Reading again from another offset starts over there.
        let n = try buf.withUnsafeMutableBytes { try remote.readDatabase("app", at: Int64(Self.chunk * 5), into: $0) }
        #expect(n == Self.chunk && Array(buf[0..<n]) == ScriptedOwner.pattern(Int64(Self.chunk * 5), n))
        #expect(try remote.rollLog() == 7)
        remote.abort()
        // No request past the database's size was sent ahead.
        for case .readDatabase(_, let o, _) in owner.seen { #expect(o < size) }
    }

    @Test func anAnswerLargerThanAskedForIsRefused() throws {
        let owner = try ScriptedOwner(size: Int64(4 * Self.chunk), oversize: true)
        defer { owner.stop() }
        let client = try #require(try ControlClient.connect(instance: owner.dir))
        defer { client.close() }
        let remote = try RemoteBackupSession.begin(.full, client: client)
        // A guard page after the buffer: what the owner sent too much must not land there.
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunk + 4096, alignment: 4096)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0xEE)
        #expect(throws: JetError.self) { _ = try remote.readDatabase("app", at: 0, into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<Self.chunk])) }
        #expect(buf[Self.chunk...].allSatisfy { $0 == 0xEE })
        #expect(remote.isInstanceTerminating)
    }
}

/// A command run by the owner ends as soon as its handler returns: the exit status reaches
/// the client without waiting for the watcher's poll to time out (it used to, up to 100 ms).
@Suite struct ControlCommandLatencyTests {
    @Test func commandExitReachesTheClientAtOnce() throws {
        let dir = try ControlTests.instance()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let i = dir + "/i"
        let inst = try Instance.open(at: i, owner: "t")
        defer { try? inst.close() }
        // A command that takes a moment (as a real one does): the watcher is in its wait by then.
        ControlServer.setCommandHandler { cmd in
            usleep(5000)
            _ = cmd.write(1, Array("ran \(cmd.argv.joined(separator: " "))\n".utf8))
            return 3
        }
        defer { ControlServer.setCommandHandler(nil) }
        let t0 = Clock.monotonicSeconds()
        for k in 0..<20 {
            let client = try #require(try ControlClient.connect(instance: i))
            defer { client.close() }
            try client.socket.send(.command(argv: ["x", "\(k)"], cwd: "/", environment: [], stderrIsTerminal: false))
            #expect(try client.socket.receive(timeout: 10) == .stdout(Array("ran x \(k)\n".utf8)))
            #expect(try client.socket.receive(timeout: 10) == .exit(3))
        }
        // 20 commands of 5 ms: with a 100 ms poll in the way they took about two seconds.
        let elapsed = Clock.monotonicSeconds() - t0
        #expect(elapsed < 0.6, "20 commands took \(elapsed) s")
    }
}
