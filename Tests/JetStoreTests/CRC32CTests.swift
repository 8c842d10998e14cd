import Testing
import CCRC32C
@testable import JetStore

@Suite struct CRC32CTests {
    @Test func publishedVectors() {
        // RFC 3720 B.4 and the usual check value.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test func hardwareAgreesWithTableAtEveryLengthAndAlignment() {
        var g = SplitMix64(seed: 99)
        let buf = (0..<(4096 + 64 + 3 * 8192 * 2)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        buf.withUnsafeBytes { p in
            for align in 0..<8 {
                for len in 0...4096 {
                    let b = p.baseAddress! + align
                    #expect(jet_crc32c_extend(0, b, len) == jet_crc32c_extend_portable(0, b, len))
                }
            }
            // The long three-stream path and extending across calls.
            for len in [3 * 8192, 3 * 8192 + 5, 2 * 3 * 8192 + 777] {
                let whole = jet_crc32c_extend(0, p.baseAddress! + 3, len)
                #expect(whole == jet_crc32c_extend_portable(0, p.baseAddress! + 3, len))
                let half = jet_crc32c_extend(0, p.baseAddress! + 3, len / 2)
                #expect(jet_crc32c_extend(half, p.baseAddress! + 3 + len / 2, len - len / 2) == whole)
            }
        }
        print("CRC32C implementation: \(CRC32C.implementation)")
    }
}
