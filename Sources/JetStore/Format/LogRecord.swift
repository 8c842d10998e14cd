/// What a committed transaction writes to the log: physical redo of every page it changed.
///
/// A page's first change after a checkpoint is logged as a full image (free space left
/// out); later changes as byte ranges on top of it. Replay from a checkpoint therefore
/// rebuilds every page changed since, whatever the age or state (torn, stale, newer) of
/// the copy on disk: the rule that makes an online, page-by-page copy restorable.
///
/// Payload: a sequence of operations until the end:
/// ```
/// 1 image:  u16 dbid, u32 pgno, u16 holeStart, u16 holeLength, u32 n, n bytes
/// 2 ranges: u16 dbid, u32 pgno, u64 previous dbtime, u16 count, count × (u16 offset, u16 length, bytes)
/// 3 create database: u16 dbid, u32 page size, 16 signature, name (u16 length + UTF-8)
/// ```
public enum LogOperation: Sendable {
    case pageImage(dbid: UInt16, pgno: UInt32, holeStart: Int, holeLength: Int, bytes: [UInt8])
    case pageRanges(dbid: UInt16, pgno: UInt32, previousDbtime: UInt64, ranges: [(offset: Int, bytes: [UInt8])])
    case createDatabase(dbid: UInt16, pageSize: UInt32, signature: Signature, name: String)

    static let imageTag: UInt8 = 1
    static let rangesTag: UInt8 = 2
    static let createTag: UInt8 = 3

    /// Decodes a transaction payload. `where` names generation and offset for errors.
    public static func decode(_ payload: UnsafeRawBufferPointer, where place: String) throws -> [LogOperation] {
        let corrupt = JetError(.logReadVerifyFailure,
                               "log record at \(place) has a valid checksum but a malformed body; the log is damaged: restore from a backup")
        var r = ByteReader(payload, corrupt: corrupt)
        var ops: [LogOperation] = []
        while r.remaining > 0 {
            switch try r.u8() {
            case imageTag:
                let dbid = try r.u16(), pgno = try r.u32()
                let hs = Int(try r.u16()), hl = Int(try r.u16())
                let n = Int(try r.u32())
                let bytes = [UInt8](try r.raw(n))
                ops.append(.pageImage(dbid: dbid, pgno: pgno, holeStart: hs, holeLength: hl, bytes: bytes))
            case rangesTag:
                let dbid = try r.u16(), pgno = try r.u32(), prev = try r.u64()
                let count = Int(try r.u16())
                var ranges: [(Int, [UInt8])] = []
                ranges.reserveCapacity(count)
                for _ in 0..<count {
                    let off = Int(try r.u16()), len = Int(try r.u16())
                    ranges.append((off, [UInt8](try r.raw(len))))
                }
                ops.append(.pageRanges(dbid: dbid, pgno: pgno, previousDbtime: prev, ranges: ranges))
            case createTag:
                let dbid = try r.u16(), ps = try r.u32()
                let sig = Signature(random: try r.u64(), time: try r.u64())
                let name = try r.string()
                ops.append(.createDatabase(dbid: dbid, pageSize: ps, signature: sig, name: name))
            default:
                throw corrupt
            }
        }
        return ops
    }
}

/// Builds a transaction payload without intermediate arrays.
struct LogPayloadBuilder {
    var w = ByteWriter(capacity: 4096)

    var isEmpty: Bool { w.bytes.isEmpty }

    mutating func image(dbid: UInt16, pgno: UInt32, page: UnsafeRawBufferPointer) {
        let hole = PageFormat.hole(page)
        w.u8(LogOperation.imageTag); w.u16(dbid); w.u32(pgno)
        w.u16(UInt16(hole.lowerBound)); w.u16(UInt16(hole.count))
        w.u32(UInt32(page.count - hole.count))
        w.raw(UnsafeRawBufferPointer(rebasing: page[0..<hole.lowerBound]))
        w.raw(UnsafeRawBufferPointer(rebasing: page[hole.upperBound...]))
    }

    mutating func ranges(dbid: UInt16, pgno: UInt32, previousDbtime: UInt64, page: UnsafeRawBufferPointer, ranges: [Range<Int>]) {
        w.u8(LogOperation.rangesTag); w.u16(dbid); w.u32(pgno); w.u64(previousDbtime)
        w.u16(UInt16(ranges.count))
        for r in ranges {
            w.u16(UInt16(r.lowerBound)); w.u16(UInt16(r.count))
            w.raw(UnsafeRawBufferPointer(rebasing: page[r]))
        }
    }

    mutating func createDatabase(dbid: UInt16, pageSize: UInt32, signature: Signature, name: String) {
        w.u8(LogOperation.createTag); w.u16(dbid); w.u32(pageSize)
        w.u64(signature.random); w.u64(signature.time)
        w.string(name)
    }
}
