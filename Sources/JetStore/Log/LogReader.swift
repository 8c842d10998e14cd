/// Reads log generations (leveldb `db/log_reader.cc`): checks the header and every
/// record's checksum, and reassembles transactions that span generations.
public struct LogReader {
    /// One record as read.
    public struct Fragment: Sendable {
        public var offset: Int
        public var type: LogFormat.RecordType
        public var payload: Range<Int>
    }

    /// How a generation's records end.
    public enum End: Sendable, Equatable {
        /// A zero header, or the end of the file: everything before it is whole.
        case clean(offset: Int)
        /// A record that fails its checksum or is cut short, at `offset`. `torn` when its
        /// extent holds a sector that was never written (a crash cut the write); otherwise
        /// it was damaged after being written.
        case bad(offset: Int, reason: String, torn: Bool)

        /// Where the records read end.
        public var offset: Int {
            switch self {
            case .clean(let o), .bad(let o, _, _): o
            }
        }
    }

    /// A generation read whole into memory: its payloads unmasked in place, unless it was
    /// parsed to be checked and copied as it is (`masked`: the bytes are the file's).
    public struct Generation: Sendable {
        public let path: String
        public let header: LogFormat.Header
        public let bytes: [UInt8]
        public let fragments: [Fragment]
        public let end: End
        /// True if the payloads are still masked as the file holds them (`parse(unmask: false)`).
        public var masked = false

        /// The records as checked, without the bytes.
        public var scan: Scan { Scan(path: path, header: header, fragments: fragments, end: end) }

        /// True if any record with a valid checksum lies after `offset`: then a bad record
        /// at `offset` is damage, not a torn tail of an interrupted write.
        public func hasValidRecord(after offset: Int) -> Bool {
            bytes.withUnsafeBytes { p in
                var o = offset + LogFormat.alignment
                while o + LogFormat.recordHeaderSize <= p.count {
                    if LogReader.recordAt(p, o) != nil { return true }
                    o += LogFormat.alignment
                }
                return false
            }
        }

        /// True if the bad record at the end is the torn tail of an interrupted write: cut
        /// by a crash (an unwritten sector in it) and followed by no valid record.
        public var endsInTornWrite: Bool {
            if case .bad(let o, _, let torn) = end { return torn && !hasValidRecord(after: o) }
            return false
        }
    }

    /// Reads a generation file: header, then records from `from` (default: the first).
    public static func read(fs: any FileSystem, path: String, from: Int = LogFormat.headerSize) throws -> Generation {
        let bytes = try fs.readAll(path)
        return try parse(bytes, path: path, from: from)
    }

    /// `unmask: false` checks every record but leaves the bytes as they are (no copy of them
    /// is made): for a caller that copies the file and needs of its payloads only what
    /// `CommitScanner` reads. A caller that hands over its last reference to `input` lets the
    /// payloads be unmasked without a copy too.
    public static func parse(_ input: consuming [UInt8], path: String, from: Int = LogFormat.headerSize,
                             unmask: Bool = true) throws -> Generation {
        var bytes = input
        let s = unmask
            ? try bytes.withUnsafeMutableBytes { try scan(UnsafeRawBufferPointer($0), path: path, from: from, unmasking: $0) }
            : try bytes.withUnsafeBytes { try scan($0, path: path, from: from, unmasking: nil) }
        return Generation(path: path, header: s.header, bytes: bytes, fragments: s.fragments, end: s.end, masked: !unmask)
    }

    /// A generation's records as checked, its bytes held by the caller (still masked).
    public struct Scan: Sendable {
        public let path: String
        public let header: LogFormat.Header
        public let fragments: [Fragment]
        public let end: End
    }

    /// Checks the header, the size and every record of a generation held elsewhere (a
    /// mapped file, `FileBytes`), as `parse(unmask: false)` does, without copying it.
    public static func scan(_ p: UnsafeRawBufferPointer, path: String, from: Int = LogFormat.headerSize) throws -> Scan {
        try scan(p, path: path, from: from, unmasking: nil)
    }

    /// The walk of `parse` and `scan`: unmasks each record's payload into `m` (the same
    /// bytes as `p`) when given.
    private static func scan(_ p: UnsafeRawBufferPointer, path: String, from: Int,
                             unmasking m: UnsafeMutableRawBufferPointer?) throws -> Scan {
        let header = try LogFormat.Header.decode(p, file: path)
        guard Int(header.fileSize) == p.count, p.count >= LogFormat.headerSize else {
            throw JetError(.logReadVerifyFailure,
                           "log generation \(path) is \(p.count) bytes, its header says \(header.fileSize); the file was truncated or extended: "
                               + "restore from a backup")
        }
        var fragments: [Fragment] = []
        var end = End.clean(offset: p.count)
        var o = max(from, LogFormat.headerSize)
        while true {
            if o + LogFormat.recordHeaderSize > p.count { end = .clean(offset: o); break }
            if PageFormat.isAllZero(UnsafeRawBufferPointer(rebasing: p[o..<(o + LogFormat.recordHeaderSize)])) {
                end = .clean(offset: o); break
            }
            guard let (type, payload) = recordAt(p, o) else {
                let headerOK = LogFormat.headerCheckOK(p, o)
                let length = Int(p.u32(o + 4))
                let extentEnd = headerOK ? min(p.count, o + LogFormat.recordSize(payload: length)) : o + LogFormat.recordHeaderSize
                let torn = LogFormat.hasUnwrittenSector(p, o, extentEnd)
                let reason = !headerOK ? "a record header fails its check"
                    : o + LogFormat.recordHeaderSize + length > p.count ? "a record runs past the end of the file"
                    : "a record fails its checksum"
                end = .bad(offset: o, reason: reason, torn: torn)
                break
            }
            if let m { LogFormat.applyMask(UnsafeMutableRawBufferPointer(rebasing: m[payload])) }
            fragments.append(Fragment(offset: o, type: type, payload: payload))
            o += LogFormat.recordSize(payload: payload.count)
        }
        return Scan(path: path, header: header, fragments: fragments, end: end)
    }

    /// The record at `o` if its header is sane and its checksum matches.
    static func recordAt(_ p: UnsafeRawBufferPointer, _ o: Int) -> (LogFormat.RecordType, Range<Int>)? {
        guard o + LogFormat.recordHeaderSize <= p.count else { return nil }
        let length = Int(p.u32(o + 4))
        guard let type = LogFormat.RecordType(rawValue: p[o + 8]), LogFormat.headerCheckOK(p, o),
              o + LogFormat.recordHeaderSize + length <= p.count else { return nil }
        var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(o + 4)..<(o + 12)]))
        crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(o + 12)..<(o + 12 + length)]), extending: crc)
        guard crc == p.u32(o) else { return nil }
        return (type, (o + 12)..<(o + 12 + length))
    }
}

extension LogReader {
    /// A committed transaction as the log holds it: its commit time and where it ends.
    public struct Commit: Sendable, Equatable {
        /// Microseconds since the epoch (the engine's clock at the commit; never less than
        /// the commit before it).
        public var time: UInt64
        /// The position just past its last record: replay through here includes it.
        public var end: LogPosition
    }

    /// The commits of a chain of generations (`paths` oldest first, each checked by
    /// `LogChainFault` by the caller if it must be), from `start` on: what a stop at a time or
    /// a generation (`Instance.RecoveryStop`) would choose from. A transaction cut at the end
    /// of the chain is left out.
    public static func commits(fs: any FileSystem, paths: [String], from start: LogPosition? = nil) throws -> [Commit] {
        var out: [Commit] = []
        var scanner = CommitScanner()
        for p in paths {
            let bytes = try fs.readAll(p)
            let header = try bytes.withUnsafeBytes { try LogFormat.Header.decode($0, file: p) }
            if let s = start, header.generation < s.generation { continue }
            let from = start.map { $0.generation == header.generation ? Int($0.offset) : LogFormat.headerSize } ?? LogFormat.headerSize
            out += try scanner.feed(try parse(bytes, path: p, from: from))
        }
        return out
    }
}

/// Reassembles transactions from fragments across generations.
struct TransactionAssembler {
    private var parts: [UInt8] = []
    private var open = false
    private(set) var openStart: LogPosition?

    /// Feeds a fragment; returns a whole transaction payload when one completes.
    mutating func feed(_ f: LogReader.Fragment, _ g: LogReader.Generation) throws -> [UInt8]? {
        let place = "\(g.path) offset \(f.offset)"
        switch f.type {
        case .full:
            guard !open else { throw Self.outOfOrder(place) }
            return [UInt8](g.bytes[f.payload])
        case .first:
            guard !open else { throw Self.outOfOrder(place) }
            open = true
            openStart = LogPosition(generation: g.header.generation, offset: UInt32(f.offset))
            parts = [UInt8](g.bytes[f.payload])
            return nil
        case .middle:
            guard open else { throw Self.outOfOrder(place) }
            parts.append(contentsOf: g.bytes[f.payload])
            return nil
        case .last:
            guard open else { throw Self.outOfOrder(place) }
            parts.append(contentsOf: g.bytes[f.payload])
            open = false
            openStart = nil
            defer { parts = [] }
            return parts
        }
    }

    var isOpen: Bool { open }

    /// The error for fragments out of order (also `LogReader.CommitScanner`'s).
    static func outOfOrder(_ place: String) -> JetError {
        JetError(.logReadVerifyFailure, "the log's transaction fragments are out of order at \(place); the log is damaged: restore from a backup")
    }
}
