/// The shared contract of log generations (leveldb `db/log_format.h`).
///
/// A generation is a fixed-size file. Its first `headerSize` bytes are the header:
/// ```
/// 0  8  magic "JETLOG01"
/// 8  u32 format version
/// 12 u32 generation
/// 16 16  log signature (random, time)
/// 32 u64 creation time (µs)
/// 40 u64 creation time of the previous generation (the chain link; 0 for the first)
/// 48 u32 file size
/// 52 u32 CRC32C of bytes [0, 52)
/// ```
/// Records follow, each 8-byte aligned:
/// ```
/// 0 u32 CRC32C of bytes [4, 12 + length) (as stored)
/// 4 u32 length of the payload
/// 8 u8  type: full, first, middle, last (a transaction larger than the space left in a
///       generation continues in the next one)
/// 9 3   low 24 bits of CRC32C of bytes [4, 9): the length and type can be trusted alone
/// 12    payload, masked: every byte XORed with 0xA5
/// ```
/// A zero length with type zero marks the end of what was written (files start zeroed).
///
/// Why the mask: generation files are zero-filled before use, and payloads hold zero runs
/// (fields, cells, overflow bytes); masked, a payload holds a 512-byte run of zeros only where
/// the data held 512 bytes of 0xA5 in a row, which the engine's records and the load generator
/// never do. So a record whose
/// extent holds an all-zero 512-byte sector was cut by a crash (a torn write: sectors are
/// written whole or not at all), while a record whose every sector was written yet fails its
/// checksum was damaged afterwards. The first is the end of the log; the second is
/// `JET_errLogReadVerifyFailure`, even at the very end of the newest generation, so a
/// committed transaction is not dropped silently. A single-byte mask (rather than a
/// keystream, format version 2) keeps the log exactly as compressible as its content:
/// zstd sees the same matches and the same symbol frequencies, only relabelled.
public enum LogFormat {
    public static let magic: [UInt8] = Array("JETLOG01".utf8)
    /// Written by this jetbackup. Version 5 added split records that name the page the moved
    /// cells come from (`PageChange.move`) and several groups of one page in a transaction;
    /// a version 4 log is a version 5 log without them, and is read as well.
    public static let version: UInt32 = 5
    public static let readableVersions: ClosedRange<UInt32> = 4...5
    /// Where a generation's header holds its format version.
    static let versionOffset = 8
    public static let sectorSize = 512
    public static let headerSize = 4096
    public static let recordHeaderSize = 12
    public static let alignment = 8
    public static let minimumFileSize = 64 * 1024
    public static let maximumFileSize = 1024 * 1024 * 1024

    public enum RecordType: UInt8, Sendable {
        case full = 1
        case first = 2
        case middle = 3
        case last = 4
    }

    public struct Header: Sendable, Equatable {
        public var generation: UInt32
        public var signature: Signature
        public var creationTime: UInt64
        public var previousCreationTime: UInt64
        public var fileSize: UInt32

        public init(generation: UInt32, signature: Signature, creationTime: UInt64, previousCreationTime: UInt64, fileSize: UInt32) {
            self.generation = generation; self.signature = signature; self.creationTime = creationTime
            self.previousCreationTime = previousCreationTime; self.fileSize = fileSize
        }

        public func encode() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: LogFormat.headerSize)
            out.withUnsafeMutableBytes { p in
                for (i, b) in LogFormat.magic.enumerated() { p[i] = b }
                p.setU32(LogFormat.versionOffset, LogFormat.version)
                p.setU32(12, generation)
                signature.encode(p, 16)
                p.setU64(32, creationTime)
                p.setU64(40, previousCreationTime)
                p.setU32(48, fileSize)
                p.setU32(52, CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<52])))
            }
            return out
        }

        /// Reads (the first `headerSize` bytes of `file`) and decodes the header of a log
        /// generation stored as it is; a file shorter than a header fails the check.
        public static func read(_ file: any StorageFile, path: String) throws -> Header {
            var head = [UInt8](repeating: 0, count: LogFormat.headerSize)
            let n = try head.withUnsafeMutableBytes { try file.read(at: 0, into: $0) }
            return try head.withUnsafeBytes { try decode(UnsafeRawBufferPointer(rebasing: $0[0..<n]), file: path) }
        }

        /// Decodes and checks a header; the error names the file.
        public static func decode(_ p: UnsafeRawBufferPointer, file: String) throws -> Header {
            guard p.count >= 56, Array(p[0..<8]) == LogFormat.magic else {
                throw JetError(.logReadVerifyFailure, "\(file) is not a log generation (bad magic); the log is damaged: restore from a backup")
            }
            guard p.u32(52) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<52])) else {
                throw JetError(.logReadVerifyFailure, "the header of log generation \(file) fails its checksum; the log is damaged: "
                    + "restore from a backup")
            }
            guard LogFormat.readableVersions.contains(p.u32(LogFormat.versionOffset)) else {
                let v = p.u32(LogFormat.versionOffset)
                let r = LogFormat.readableVersions
                throw JetError(.logReadVerifyFailure, "\(file) has log format version \(v), this jetbackup reads \(r.lowerBound) to \(r.upperBound)"
                               + (v < r.lowerBound ? "; it was written by an earlier jetbackup: read it with that version" : ""))
            }
            return Header(generation: p.u32(12), signature: Signature.decode(p, 16), creationTime: p.u64(32),
                          previousCreationTime: p.u64(40), fileSize: p.u32(48))
        }
    }

    @inline(__always)
    public static func aligned(_ n: Int) -> Int { (n + alignment - 1) & ~(alignment - 1) }

    /// Bytes a record with `payload` bytes takes, header and padding included.
    @inline(__always)
    public static func recordSize(payload: Int) -> Int { aligned(recordHeaderSize + payload) }

    /// Appends a record (header, masked payload, zero padding) to `out`.
    static func appendRecord(_ out: inout [UInt8], type: RecordType, payload: UnsafeRawBufferPointer) {
        let start = out.count
        var w = ByteWriter()
        w.u32(0); w.u32(UInt32(payload.count)); w.u8(type.rawValue); w.u8(0); w.u8(0); w.u8(0)
        out.append(contentsOf: w.bytes)
        out.append(contentsOf: payload)
        let padded = recordSize(payload: payload.count)
        out.append(contentsOf: repeatElement(0, count: padded - (out.count - start)))
        out.withUnsafeMutableBytes { p in
            let check = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(start + 4)..<(start + 9)])) & 0xFF_FFFF
            p[start + 9] = UInt8(check & 0xFF); p[start + 10] = UInt8((check >> 8) & 0xFF); p[start + 11] = UInt8(check >> 16)
            applyMask(UnsafeMutableRawBufferPointer(rebasing: p[(start + 12)..<(start + 12 + payload.count)]))
            var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(start + 4)..<(start + 12)]))
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(start + 12)..<(start + 12 + payload.count)]), extending: crc)
            p.setU32(start, crc)
        }
    }

    /// True if the header's length and type agree with its own check.
    static func headerCheckOK(_ p: UnsafeRawBufferPointer, _ o: Int) -> Bool {
        let check = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[(o + 4)..<(o + 9)])) & 0xFF_FFFF
        return UInt32(p[o + 9]) | UInt32(p[o + 10]) << 8 | UInt32(p[o + 11]) << 16 == check
    }

    /// The byte every payload byte is XORed with as stored.
    static let mask: UInt8 = 0xA5

    /// XORs bytes with `mask` (its own inverse), eight at a time.
    static func applyMask(_ b: UnsafeMutableRawBufferPointer) {
        let n = b.count
        guard n > 0, let base = b.baseAddress else { return }
        let word: UInt64 = 0xA5A5_A5A5_A5A5_A5A5
        var i = 0
        while i + 8 <= n {
            let v = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            base.storeBytes(of: v ^ word, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n { b[i] ^= mask; i += 1 }
    }

    /// True if any 512-byte sector overlapping [lo, hi) is entirely zero: bytes of it were
    /// never written (the file was zero-filled), so a record there was cut by a crash.
    static func hasUnwrittenSector(_ p: UnsafeRawBufferPointer, _ lo: Int, _ hi: Int) -> Bool {
        var s = lo - lo % sectorSize
        while s < min(hi, p.count) {
            let e = min(s + sectorSize, p.count)
            if PageFormat.isAllZero(UnsafeRawBufferPointer(rebasing: p[s..<e])) { return true }
            s += sectorSize
        }
        return false
    }
}

/// The checkpoint file `edb.chk`: two copies of one small record, written one after the
/// other with an fsync between, so at every instant at least one copy is whole. The valid
/// copy with the higher sequence number wins (LMDB's two meta pages).
///
/// Each copy, at offsets 0 and `copySize`:
/// ```
/// 0  8   magic "JETCHK01"
/// 8  u64 sequence
/// 16 16  log signature
/// 32 u64 checkpoint position (generation << 32 | offset): replay starts here
/// 40 u64 time (µs)
/// 48 u32 CRC32C of bytes [0, 48)
/// ```
public struct Checkpoint: Sendable, Equatable {
    public static let magic: [UInt8] = Array("JETCHK01".utf8)
    public static let copySize = 512

    public var sequence: UInt64
    public var logSignature: Signature
    public var position: LogPosition
    public var time: UInt64

    public init(sequence: UInt64, logSignature: Signature, position: LogPosition, time: UInt64) {
        self.sequence = sequence; self.logSignature = logSignature; self.position = position; self.time = time
    }

    public func encodeCopy() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.copySize)
        out.withUnsafeMutableBytes { p in
            for (i, b) in Self.magic.enumerated() { p[i] = b }
            p.setU64(8, sequence)
            logSignature.encode(p, 16)
            p.setU64(32, position.rawValue)
            p.setU64(40, time)
            p.setU32(48, CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<48])))
        }
        return out
    }

    public static func decodeCopy(_ p: UnsafeRawBufferPointer) -> Checkpoint? {
        guard p.count >= 52, Array(p[0..<8]) == magic,
              p.u32(48) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<48])) else { return nil }
        return Checkpoint(sequence: p.u64(8), logSignature: Signature.decode(p, 16),
                          position: LogPosition(rawValue: p.u64(32)), time: p.u64(40))
    }
}
