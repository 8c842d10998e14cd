#if canImport(Glibc)
import Glibc
#endif

/// A backup session of an instance another process owns, served by that owner over its
/// control socket (`ControlServer`): the engine's work — pages read from the live cache and
/// files and verified, logs chain-checked, the roll, recording the backup, truncation — runs
/// in the owner; this process writes the set from what it hands over.
///
/// Requests go in order (a lock serializes threads that share the session), each answered in
/// turn. A database is read ahead: the requests for the next `readAhead` chunks are sent
/// before the answer to the current one is read, so the owner reads and verifies the next
/// chunks while this process hashes and writes the last ones, with no round trip per chunk.
/// Answers asked for but not used (the database ended, a read failed, another request comes)
/// are read and dropped first, so every answer still matches its request. If the owner goes
/// away, every call throws `JET_errBackupAbortByServer`; the owner, for its part, aborts the
/// session (nothing recorded, nothing truncated) when this process goes away.
public final class RemoteBackupSession: BackupSource, @unchecked Sendable {
    public let kind: BackupSession.Kind
    public let start: LogPosition
    public let startTime: UInt64
    public let logSignature: Signature
    public let databases: [BackupSession.Database]
    public let previousEnd: UInt32?
    public let pageSize: Int
    public let logFileSize: Int
    public let instancePath: String
    public let events: EventLog

    /// The longest the owner may take to answer one request (a checkpoint, recording the
    /// backup): an owner that stops (SIGSTOP, a hung disk) ends the backup, not this process.
    static let answerTimeout: Double = 600

    /// Database chunks asked for ahead of the one being read (each up to `maximumChunk`; the
    /// owner holds one, the rest wait as requests in its socket).
    static let readAhead = 8

    private let client: ControlClient
    private let lock = Lock()
    private var ended = false
    private var terminating = false
    /// Database reads sent whose answers are not read yet, oldest first.
    private var ahead: [(name: String, offset: Int64, length: Int)] = []

    /// Starts a session in the owner that `client` is connected to.
    public static func begin(_ kind: BackupSession.Kind, client: ControlClient) throws -> RemoteBackupSession {
        switch try exchange(client, .backupBegin(kind), doing: "starting the backup") {
        case .sessionStarted(let info):
            return RemoteBackupSession(client: client, info: info)
        case let other:
            throw unexpected(other)
        }
    }

    private init(client: ControlClient, info: ControlMessage.SessionInfo) {
        self.client = client
        kind = info.kind
        start = info.start
        startTime = info.startTime
        logSignature = info.logSignature
        databases = info.databases
        previousEnd = info.previousEnd
        pageSize = Int(info.pageSize)
        logFileSize = Int(info.logFileSize)
        instancePath = client.instance
        let sock = client.socket
        // Fire and forget: an event is a report, and the owner answers nothing to it.
        events = EventLog(forward: { id, level, message, data in
            try? sock.send(.event(id: Int32(id), level: level, message: message, data: data))
        })
    }

    deinit { abort() }

    public var firstGeneration: UInt32 { kind == .full ? start.generation : (previousEnd ?? 0) + 1 }

    public var currentGeneration: UInt32 {
        if case .number(let n)? = try? request(.currentGeneration, doing: "asking for the current generation") { return n }
        return 0
    }

    public var isInstanceTerminating: Bool { lock.withLock { terminating } }

    public func readDatabase(_ name: String, at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try lock.withLock {
            try checkOpenLocked()
            let what = "reading database \(name)"
            let length = min(buffer.count, ControlMessage.maximumChunk)
            if let first = ahead.first, first.name != name || first.offset != offset || first.length != length {
                try dropAheadLocked(doing: what)
            }
            if ahead.isEmpty { try askLocked(name, at: offset, length: length, doing: what) }
            // Keep the window full up to the database's size when the session began; a chunk
            // past it (the database grew) is asked for when it is read.
            let size = databases.first { $0.name == name }?.size ?? 0
            while ahead.count < Self.readAhead, let last = ahead.last, last.offset + Int64(length) < size {
                try askLocked(name, at: last.offset + Int64(length), length: length, doing: what)
            }
            let got: ControlSocket.Received
            do {
                got = try client.socket.receiveData(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), timeout: Self.answerTimeout)
            } catch {
                throw brokenLocked(error, doing: what)
            }
            ahead.removeFirst()
            switch got {
            case .data(let n):
                // The database ends here: answers for chunks past it are not used.
                if n < length { try dropAheadLocked(doing: what) }
                return n
            case .message(let m):
                try dropAheadLocked(doing: what)
                if case .error(let code, let message) = m {
                    let c = JetError.Code(rawValue: code) ?? .instanceUnavailable
                    if c == .termInProgress { terminating = true }
                    throw JetError(c, message)
                }
                throw Self.unexpected(m)
            }
        }
    }

    private func askLocked(_ name: String, at offset: Int64, length: Int, doing what: String) throws {
        do {
            try client.socket.send(.readDatabase(name: name, offset: offset, length: UInt32(length)))
        } catch let e as ControlLost {
            terminating = true
            ahead = []
            throw client.lostError(e, doing: what)
        }
        ahead.append((name, offset, length))
    }

    /// A receive failed: the owner is gone (its error says so), or it sent more bytes than
    /// asked for, after which the connection cannot be trusted to stay in step. Either way
    /// the session ends.
    private func brokenLocked(_ error: any Error, doing what: String) -> any Error {
        terminating = true
        ahead = []
        if let e = error as? ControlLost { return client.lostError(e, doing: what) }
        client.socket.shutdown()
        return error
    }

    /// Reads and drops the answers to database reads sent ahead and not used, so that the
    /// next answer is the next request's.
    private func dropAheadLocked(doing what: String) throws {
        while !ahead.isEmpty {
            do {
                _ = try client.socket.receive(timeout: Self.answerTimeout)
            } catch {
                throw brokenLocked(error, doing: what)
            }
            ahead.removeFirst()
        }
    }

    public func rollLog() throws -> UInt32 {
        switch try request(.rollLog, doing: "rolling the log") {
        case .number(let n): return n
        case let other: throw Self.unexpected(other)
        }
    }

    public func generations(from first: UInt32?, through last: UInt32) throws -> ClosedRange<UInt32> {
        switch try request(.generations(from: first, through: last), doing: "listing log generations") {
        case .range(let l, let h) where l <= h: return l...h
        case let other: throw Self.unexpected(other)
        }
    }

    /// The owner sends the generation's description, then its bytes in slices (each frame
    /// stays small whatever the log file size).
    public func readLog(_ g: UInt32, previousCreation: UInt64?) throws -> BackupSession.LogFile {
        try lock.withLock {
            try checkOpenLocked()
            let what = "reading log generation \(g)"
            try dropAheadLocked(doing: what)
            guard case .logFile(let gen, let name, let records, let size) = try exchangeLocked(.readLog(generation: g, previousCreation: previousCreation),
                                                                                              doing: what) else {
                throw JetError(.instanceUnavailable, "the owner answered a log read with something else")
            }
            // Page-aligned, so that the copier can write the generation out directly.
            let bytes = try FileBytes(pageAligned: Int(size)) { p in
                var have = 0
                while have < p.count {
                    let got = try receiveDataLocked(into: UnsafeMutableRawBufferPointer(rebasing: p[have...]), doing: what)
                    guard got > 0 else { throw Self.unexpected(.data([])) }
                    have += got
                }
            }
            let header = try bytes.withUnsafeBytes { p -> LogFormat.Header in
                guard p.count >= LogFormat.headerSize else { throw JetError(.logReadVerifyFailure, "log generation \(name) from the owner is truncated") }
                return try LogFormat.Header.decode(UnsafeRawBufferPointer(rebasing: p[0..<LogFormat.headerSize]), file: name)
            }
            guard gen == g, header.generation == g else {
                throw JetError(.logReadVerifyFailure, "the owner handed generation \(header.generation) for \(g)")
            }
            return BackupSession.LogFile(generation: g, fileName: name, header: header, bytes: bytes, records: Int(records))
        }
    }

    /// Tells the owner the set is durable: it records the backup, then truncates.
    public func complete(generations: ClosedRange<UInt32>) throws -> ClosedRange<UInt32>? {
        let r = try request(.complete(low: generations.lowerBound, high: generations.upperBound), doing: "recording the backup")
        lock.withLock { ended = true }
        switch r {
        case .range(let l, let h) where l <= h: return l...h
        case .noRange: return nil
        case let other: throw Self.unexpected(other)
        }
    }

    public func abort() {
        let first = lock.withLock { () -> Bool in defer { ended = true }; return !ended }
        guard first else { return }
        // The owner aborts on a closed connection too; asking first just makes it prompt.
        lock.withLock { try? dropAheadLocked(doing: "ending the backup") }
        _ = try? client.socket.send(.abort, timeout: 5)
        _ = try? client.socket.receive(timeout: 5)
    }

    // MARK: Requests

    private func request(_ m: ControlMessage, doing what: String) throws -> ControlMessage {
        try lock.withLock {
            try checkOpenLocked()
            try dropAheadLocked(doing: what)
            return try exchangeLocked(m, doing: what)
        }
    }

    /// A `.data` answer into `buffer` (its byte count); an error answer is thrown.
    private func receiveDataLocked(into buffer: UnsafeMutableRawBufferPointer, doing what: String) throws -> Int {
        let got: ControlSocket.Received
        do {
            got = try client.socket.receiveData(into: buffer, timeout: Self.answerTimeout)
        } catch let e as ControlLost {
            terminating = true
            throw client.lostError(e, doing: what)
        } catch {
            terminating = true
            client.socket.shutdown()
            throw error
        }
        switch got {
        case .data(let n): return n
        case .message(.error(let code, let message)):
            let c = JetError.Code(rawValue: code) ?? .instanceUnavailable
            if c == .termInProgress { terminating = true }
            throw JetError(c, message)
        case .message(let other): throw Self.unexpected(other)
        }
    }

    private func checkOpenLocked() throws {
        if ended { throw JetError(.invalidParameter, "the backup session has ended") }
    }

    private func exchangeLocked(_ m: ControlMessage, doing what: String) throws -> ControlMessage {
        do {
            try client.socket.send(m)
            return try receiveLocked(doing: what)
        } catch let e as ControlLost {
            terminating = true
            throw client.lostError(e, doing: what)
        }
    }

    private func receiveLocked(doing what: String) throws -> ControlMessage {
        do {
            let r = try client.socket.receive(timeout: Self.answerTimeout)
            if case .error(let code, let message) = r {
                let c = JetError.Code(rawValue: code) ?? .instanceUnavailable
                if c == .termInProgress { terminating = true }
                throw JetError(c, message)
            }
            return r
        } catch let e as ControlLost {
            terminating = true
            throw client.lostError(e, doing: what)
        }
    }

    private static func exchange(_ client: ControlClient, _ m: ControlMessage, doing what: String) throws -> ControlMessage {
        do {
            try client.socket.send(m)
            let r = try client.socket.receive(timeout: Self.answerTimeout)
            if case .error(let code, let message) = r { throw JetError(JetError.Code(rawValue: code) ?? .instanceUnavailable, message) }
            return r
        } catch let e as ControlLost {
            throw client.lostError(e, doing: what)
        }
    }

    private static func unexpected(_ m: ControlMessage) -> JetError {
        JetError(.instanceUnavailable, "the owner answered with an unexpected message; it may run another version of the engine")
    }
}
