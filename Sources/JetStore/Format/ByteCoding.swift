import CCRC32C

/// Little-endian field access on raw buffers. All on-disk integers are little-endian.
extension UnsafeRawBufferPointer {
    @inline(__always) func u16(_ o: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    @inline(__always) func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
}

extension UnsafeMutableRawBufferPointer {
    @inline(__always) func u16(_ o: Int) -> UInt16 { UnsafeRawBufferPointer(self).u16(o) }
    @inline(__always) func u32(_ o: Int) -> UInt32 { UnsafeRawBufferPointer(self).u32(o) }
    @inline(__always) func u64(_ o: Int) -> UInt64 { UnsafeRawBufferPointer(self).u64(o) }
    @inline(__always) func setU16(_ o: Int, _ v: UInt16) { storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt16.self) }
    @inline(__always) func setU32(_ o: Int, _ v: UInt32) { storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt32.self) }
    @inline(__always) func setU64(_ o: Int, _ v: UInt64) { storeBytes(of: v.littleEndian, toByteOffset: o, as: UInt64.self) }
}

/// CRC32C, hardware-accelerated (the C target picks the implementation at run time).
public enum CRC32C {
    @inline(__always)
    public static func checksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        jet_crc32c_extend(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8], extending crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, extending: crc) }
    }

    public static var implementation: String { String(cString: jet_crc32c_implementation()) }
}

/// Appends little-endian fields to a byte array (log records, headers built in memory).
struct ByteWriter {
    var bytes: [UInt8] = []
    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func string(_ s: String) { let u = Array(s.utf8); u16(UInt16(u.count)); raw(u) }
    /// LEB128: seven bits a byte, low first; the high bit says another byte follows.
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func varint(_ v: Int) { varint(UInt64(v)) }
    mutating func varint(_ v: UInt32) { varint(UInt64(v)) }
}

/// Reads little-endian fields; every read is bounds-checked and a short buffer throws
/// `corrupt`, so a damaged record is an error, never a trap.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    let corrupt: JetError

    init(_ bytes: UnsafeRawBufferPointer, corrupt: JetError) { self.bytes = bytes; self.corrupt = corrupt }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int) throws { if n < 0 || n > remaining { throw corrupt } }
    mutating func u8() throws -> UInt8 { try need(1); defer { offset += 1 }; return bytes[offset] }
    mutating func u16() throws -> UInt16 { try need(2); defer { offset += 2 }; return bytes.u16(offset) }
    mutating func u32() throws -> UInt32 { try need(4); defer { offset += 4 }; return bytes.u32(offset) }
    mutating func u64() throws -> UInt64 { try need(8); defer { offset += 8 }; return bytes.u64(offset) }
    mutating func raw(_ n: Int) throws -> UnsafeRawBufferPointer {
        try need(n)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }
    /// LEB128 (`ByteWriter.varint`); more than ten bytes, or bits past 64, is `corrupt`.
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8()
            if shift == 63 && b > 1 { throw corrupt }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
            if shift > 63 { throw corrupt }
        }
    }
    /// A varint that must fit `limit` (a page number, a slot, a length).
    mutating func varint(max limit: UInt64) throws -> UInt64 {
        let v = try varint()
        guard v <= limit else { throw corrupt }
        return v
    }
    mutating func string() throws -> String {
        let n = Int(try u16())
        return String(decoding: try raw(n), as: UTF8.self)
    }
}
