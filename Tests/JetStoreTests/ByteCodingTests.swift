import Testing
@testable import JetStore

/// The field coding every binary format builds on (`ByteWriter`, `ByteReader`): what is
/// written reads back, and a short or malformed field is the reader's error, never a trap.
@Suite struct ByteCodingTests {
    static let corrupt = JetError(.logReadVerifyFailure, "test: damaged")

    @Test func everyFieldRoundTrips() throws {
        let varints: [UInt64] = [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 21, UInt64(UInt32.max), 1 << 56, UInt64.max - 1, UInt64.max]
        var w = ByteWriter()
        w.u8(0xA5); w.u16(0xBEEF); w.u32(0xDEAD_BEEF); w.u64(0x0123_4567_89AB_CDEF)
        w.string("générations ✓")
        w.raw([1, 2, 3])
        for v in varints { w.varint(v) }
        w.varint(Int(70_000)); w.varint(UInt32(5))
        try w.bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) throws in
            var r = ByteReader(b, corrupt: Self.corrupt)
            #expect(try r.u8() == 0xA5)
            #expect(try r.u16() == 0xBEEF)
            #expect(try r.u32() == 0xDEAD_BEEF)
            #expect(try r.u64() == 0x0123_4567_89AB_CDEF)
            #expect(try r.string() == "générations ✓")
            #expect(try Array(r.raw(3)) == [1, 2, 3])
            for v in varints { #expect(try r.varint() == v) }
            #expect(try r.varint(max: 70_000) == 70_000)
            #expect(try r.varint() == 5)
            #expect(r.remaining == 0)
        }
        // Little-endian on disk, whatever the machine.
        var le = ByteWriter()
        le.u32(0x0403_0201)
        #expect(le.bytes == [1, 2, 3, 4])
        // LEB128 sizes: seven bits a byte.
        for (v, n) in [(UInt64(127), 1), (128, 2), (16_383, 2), (16_384, 3), (UInt64.max, 10)] {
            var x = ByteWriter()
            x.varint(v)
            #expect(x.bytes.count == n, "\(v)")
        }
    }

    @Test func shortOrMalformedFieldsAreTheReadersError() {
        func fails(_ bytes: [UInt8], _ read: (inout ByteReader) throws -> Void) -> Bool {
            bytes.withUnsafeBytes { b in
                var r = ByteReader(b, corrupt: Self.corrupt)
                do { try read(&r); return false } catch let e as JetError { return e.code == .logReadVerifyFailure } catch { return false }
            }
        }
        #expect(fails([1]) { _ = try $0.u16() })
        #expect(fails([1, 2, 3]) { _ = try $0.u32() })
        #expect(fails([1, 2, 3, 4, 5, 6, 7]) { _ = try $0.u64() })
        #expect(fails([5, 0, 65, 66]) { _ = try $0.string() })
        #expect(fails([1, 2]) { _ = try $0.raw(3) })
        #expect(fails([1, 2]) { _ = try $0.raw(-1) })
        // A varint cut short, one of eleven bytes, and one with bits past 64.
        #expect(fails([0x80, 0x80]) { _ = try $0.varint() })
        #expect(fails([UInt8](repeating: 0xFF, count: 10) + [0x01]) { _ = try $0.varint() })
        #expect(fails([UInt8](repeating: 0xFF, count: 9) + [0x02]) { _ = try $0.varint() })
        #expect(fails([0xC8, 0x01]) { _ = try $0.varint(max: 199) })
        #expect(!fails([0xC8, 0x01]) { _ = try $0.varint(max: 200) })
    }
}
