import Testing
@testable import JetStore

/// The page layout every database page shares (PageFormat.swift): seal then verify, and each
/// way a page goes wrong gets its own verdict and error.
@Suite struct PageFormatTests {
    static func randomPage(_ size: Int, seed: UInt64) -> [UInt8] {
        var g = SplitMix64(seed: seed)
        return (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    static func sealed(_ size: Int, pgno: UInt32, seed: UInt64 = 1) -> [UInt8] {
        var page = randomPage(size, seed: seed)
        page.withUnsafeMutableBytes { PageFormat.seal($0, pgno: pgno) }
        return page
    }

    static func verify(_ page: [UInt8], pgno: UInt32) -> PageFormat.Verdict {
        page.withUnsafeBytes { PageFormat.verify($0, pgno: pgno) }
    }

    @Test(arguments: PageFormat.supportedPageSizes) func sealedPageVerifiesAndKeepsItsContent(size: Int) {
        let before = Self.randomPage(size, seed: UInt64(size))
        let page = Self.sealed(size, pgno: 0x00AB_CDEF, seed: UInt64(size))
        #expect(Self.verify(page, pgno: 0x00AB_CDEF) == .valid)
        #expect(page.withUnsafeBytes { $0.u32(PageFormat.pgnoOffset) } == 0x00AB_CDEF)
        #expect(page.withUnsafeBytes { $0.u32(PageFormat.checksumOffset) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[4...])) })
        // Seal writes only its two fields.
        #expect(page[8...] == before[8...])
    }

    /// The checksum covers every byte but its own field, so any flip anywhere is caught: every
    /// byte of a 4 KiB page; the first and last sector and a prime stride of larger ones.
    @Test(arguments: PageFormat.supportedPageSizes) func everyFlippedByteIsBadChecksum(size: Int) {
        var page = Self.sealed(size, pgno: 4, seed: 2)
        let stored = page.withUnsafeBytes { $0.u32(PageFormat.checksumOffset) }
        let offsets = size == 4096 ? Array(0..<size) : Array(0..<512) + Array(stride(from: 512, to: size - 512, by: 61)) + Array((size - 512)..<size)
        var wrong = 0
        for offset in offsets {
            page[offset] ^= 0x40
            let expected: PageFormat.Verdict = offset < 4
                ? .badChecksum(stored: stored ^ (0x40 << (8 * UInt32(offset))), computed: stored)
                : .badChecksum(stored: stored, computed: page.withUnsafeBytes { PageFormat.computeChecksum($0) })
            if Self.verify(page, pgno: 4) != expected { wrong += 1 }
            page[offset] ^= 0x40
        }
        #expect(wrong == 0)
        #expect(Self.verify(page, pgno: 4) == .valid)
    }

    @Test(arguments: PageFormat.supportedPageSizes) func zeroPageIsUninitialized(size: Int) {
        #expect(Self.verify([UInt8](repeating: 0, count: size), pgno: 3) == .uninitialized)
    }

    /// Only a page that is zero throughout counts as never written; one stray byte is damage.
    @Test(arguments: [4, 100, 4095]) func zeroPageWithOneStrayByteIsBadChecksum(offset: Int) {
        var page = [UInt8](repeating: 0, count: 4096)
        page[offset] = 1
        let computed = page.withUnsafeBytes { PageFormat.computeChecksum($0) }
        #expect(Self.verify(page, pgno: 3) == .badChecksum(stored: 0, computed: computed))
    }

    /// A whole page written at the wrong place: its checksum holds, its number does not.
    @Test(arguments: PageFormat.supportedPageSizes) func pageNumberMismatchIsMisplaced(size: Int) {
        let page = Self.sealed(size, pgno: 5)
        #expect(Self.verify(page, pgno: 6) == .wrongPageNumber(found: 5))
        #expect(Self.verify(page, pgno: 5) == .valid)
    }

    @Test func errorNamesTheFileThePageAndWhatIsWrong() {
        let cases: [(PageFormat.Verdict, String)] = [
            (.uninitialized, "was never written (all zeros)"),
            (.badChecksum(stored: 0xABCD, computed: 0xFFFF_0001), "fails its checksum (stored 0x0000abcd, computed 0xffff0001)"),
            (.wrongPageNumber(found: 5), "holds page 5 (misplaced write)"),
        ]
        for (verdict, what) in cases {
            let e = PageFormat.error(verdict, file: "/inst/db.edb", pgno: 6)
            #expect(e.code == .readVerifyFailure)
            #expect(e.message == "page 6 of /inst/db.edb \(what); the database is damaged: restore it from a backup")
        }
    }
}
