/// The layout every database page shares. A torn, misplaced or stale page is detected:
/// the checksum covers the whole page but its own field, the page number is inside it,
/// and the dbtime says how new it is.
///
/// ```
/// 0  u32 checksum  CRC32C of bytes [4, pageSize)
/// 4  u32 pgno      the page's own number
/// 8  u64 dbtime    database time of the page's last change (page LSN)
/// 16 u8  type      PageType
/// 17 u8  flags
/// 18 u16 count     cells (slotted pages)
/// 20 u16 cellStart lowest byte used by cells (slotted pages); cells grow down
/// 22 u16 fragmented bytes freed inside the cell area
/// 24 u32 next      overflow chain / free list link
/// 28 u32 used      overflow: payload bytes on this page
/// 32 ...           slotted: u16 cell offsets in key order; overflow: payload
/// ```
public enum PageFormat {
    public static let supportedPageSizes = [4096, 8192, 16384, 32768]
    public static let headerSize = 32

    public static let checksumOffset = 0
    public static let pgnoOffset = 4
    public static let dbtimeOffset = 8
    public static let typeOffset = 16
    public static let flagsOffset = 17
    public static let countOffset = 18
    public static let cellStartOffset = 20
    public static let fragmentedOffset = 22
    public static let nextOffset = 24
    public static let usedOffset = 28

    /// Page 0 is the database header, page 1 its shadow; data pages follow.
    public static let headerPage: UInt32 = 0
    public static let shadowPage: UInt32 = 1
    public static let firstDataPage: UInt32 = 2

    public enum PageType: UInt8, Sendable {
        case free = 0
        case header = 1
        case branch = 2
        case leaf = 3
        case overflow = 4
    }

    public enum Verdict: Equatable, Sendable {
        case valid
        /// Never written: all zero bytes (a page allocated but not yet flushed before a crash).
        case uninitialized
        case badChecksum(stored: UInt32, computed: UInt32)
        case wrongPageNumber(found: UInt32)
    }

    public static func computeChecksum(_ page: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: page[4...]))
    }

    /// Seals a page for writing: its number and checksum.
    public static func seal(_ page: UnsafeMutableRawBufferPointer, pgno: UInt32) {
        page.setU32(pgnoOffset, pgno)
        page.setU32(checksumOffset, computeChecksum(UnsafeRawBufferPointer(page)))
    }

    public static func verify(_ page: UnsafeRawBufferPointer, pgno: UInt32) -> Verdict {
        let stored = page.u32(checksumOffset)
        let computed = computeChecksum(page)
        if stored != computed {
            if stored == 0 && isAllZero(page) { return .uninitialized }
            return .badChecksum(stored: stored, computed: computed)
        }
        let found = page.u32(pgnoOffset)
        if found != pgno { return .wrongPageNumber(found: found) }
        return .valid
    }

    public static func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < n { if bytes[i] != 0 { return false }; i += 1 }
        return true
    }

    /// The error for a page that failed `verify`, naming file and page.
    public static func error(_ verdict: Verdict, file: String, pgno: UInt32) -> JetError {
        let what: String
        switch verdict {
        case .valid: what = "is valid"
        case .uninitialized: what = "was never written (all zeros)"
        case .badChecksum(let s, let c): what = "fails its checksum (stored \(hex(s)), computed \(hex(c)))"
        case .wrongPageNumber(let f): what = "holds page \(f) (misplaced write)"
        }
        return JetError(.readVerifyFailure,
                        "page \(pgno) of \(file) \(what); the database is damaged: restore it from a backup")
    }

    static func hex(_ v: UInt32) -> String { "0x" + FileNames.hex8(v).lowercased() }
}
