/// The database header on page 0 (and its shadow on page 1): what esentutl /mh shows.
public struct DatabaseHeader: Sendable, Equatable {
    public enum State: UInt32, Sendable {
        case justCreated = 1
        case dirtyShutdown = 2
        case cleanShutdown = 3

        public var name: String {
            switch self {
            case .justCreated: "just created"
            case .dirtyShutdown: "dirty shutdown"
            case .cleanShutdown: "clean shutdown"
            }
        }
    }

    /// One backup slot: what a backup covered (ESE's BKINFO).
    public struct BackupInfo: Sendable, Equatable {
        public var genLow: UInt32
        public var genHigh: UInt32
        public var position: LogPosition
        /// Microseconds since the epoch.
        public var time: UInt64
        public init(genLow: UInt32, genHigh: UInt32, position: LogPosition, time: UInt64) {
            self.genLow = genLow; self.genHigh = genHigh; self.position = position; self.time = time
        }
    }

    public static let magic: [UInt8] = Array("JETDB001".utf8)
    public static let formatVersion: UInt32 = 1

    public var pageSize: UInt32
    public var dbid: UInt32
    public var state: State
    public var signature: Signature
    public var logSignature: Signature
    public var genMin: UInt32 = 0
    public var genMax: UInt32 = 0
    public var lastConsistent = LogPosition.zero
    public var lastConsistentTime: UInt64 = 0
    /// Pages in the file, header pages included.
    public var pageCount: UInt32
    public var rootPage: UInt32
    public var freeListHead: UInt32 = 0
    public var freeCount: UInt32 = 0
    /// The last database time handed out; every change takes the next one.
    public var dbtime: UInt64 = 0
    public var isBackupImage = false
    public var fullPrev: BackupInfo?
    public var incPrev: BackupInfo?
    public var fullCur: BackupInfo?
    public var name: String

    public init(pageSize: UInt32, dbid: UInt32, name: String, signature: Signature, logSignature: Signature) {
        self.pageSize = pageSize
        self.dbid = dbid
        self.name = name
        self.signature = signature
        self.logSignature = logSignature
        self.state = .justCreated
        self.pageCount = PageFormat.firstDataPage + 1
        self.rootPage = PageFormat.firstDataPage
    }

    // Offsets of the fields, after the 32-byte page header.
    static let oMagic = 32, oVersion = 40, oPageSize = 44, oDbid = 48, oState = 52
    static let oSig = 56, oLogSig = 72, oGenMin = 88, oGenMax = 92, oConsistent = 96, oConsistentTime = 104
    static let oPageCount = 112, oRoot = 116, oFreeHead = 120, oFreeCount = 124, oDbtime = 128
    static let oBackupImage = 136, oSlots = 144, slotSize = 40, oName = 264
    public static let encodedEnd = oName + 2 + 64
    /// The bytes `encodeAllocation` writes: page count through dbtime.
    static let allocationRange = oPageCount..<(oDbtime + 8)

    /// Writes the header fields into a page buffer (page type and checksum are the caller's).
    public func encode(into page: UnsafeMutableRawBufferPointer) {
        page[PageFormat.typeOffset] = PageFormat.PageType.header.rawValue
        for (i, b) in Self.magic.enumerated() { page[Self.oMagic + i] = b }
        page.setU32(Self.oVersion, Self.formatVersion)
        page.setU32(Self.oPageSize, pageSize)
        page.setU32(Self.oDbid, dbid)
        page.setU32(Self.oState, state.rawValue)
        signature.encode(page, Self.oSig)
        logSignature.encode(page, Self.oLogSig)
        page.setU32(Self.oGenMin, genMin)
        page.setU32(Self.oGenMax, genMax)
        page.setU64(Self.oConsistent, lastConsistent.rawValue)
        page.setU64(Self.oConsistentTime, lastConsistentTime)
        encodeAllocation(into: page)
        page.setU32(Self.oBackupImage, isBackupImage ? 1 : 0)
        for (i, slot) in [fullPrev, incPrev, fullCur].enumerated() {
            let o = Self.oSlots + i * Self.slotSize
            for k in 0..<Self.slotSize { page[o + k] = 0 }
            if let s = slot {
                page.setU32(o, 1)
                page.setU32(o + 4, s.genLow)
                page.setU32(o + 8, s.genHigh)
                page.setU64(o + 16, s.position.rawValue)
                page.setU64(o + 24, s.time)
            }
        }
        let n = Array(name.utf8.prefix(64))
        page.setU16(Self.oName, UInt16(n.count))
        for k in 0..<64 { page[Self.oName + 2 + k] = k < n.count ? n[k] : 0 }
    }

    /// Only the fields a commit changes (so a commit's log record stays small).
    func encodeAllocation(into page: UnsafeMutableRawBufferPointer) {
        page.setU32(Self.oPageCount, pageCount)
        page.setU32(Self.oRoot, rootPage)
        page.setU32(Self.oFreeHead, freeListHead)
        page.setU32(Self.oFreeCount, freeCount)
        page.setU64(Self.oDbtime, dbtime)
    }

    /// Reads a header from a page already verified by checksum; nil if it is not one of ours.
    public static func decode(_ page: UnsafeRawBufferPointer) -> DatabaseHeader? {
        guard page.count >= encodedEnd,
              page[PageFormat.typeOffset] == PageFormat.PageType.header.rawValue,
              Array(page[oMagic..<(oMagic + 8)]) == magic,
              page.u32(oVersion) == formatVersion,
              let state = State(rawValue: page.u32(oState)) else { return nil }
        let nameLen = min(Int(page.u16(oName)), 64)
        var h = DatabaseHeader(pageSize: page.u32(oPageSize), dbid: page.u32(oDbid),
                               name: String(decoding: page[(oName + 2)..<(oName + 2 + nameLen)], as: UTF8.self),
                               signature: Signature.decode(page, oSig), logSignature: Signature.decode(page, oLogSig))
        h.state = state
        h.genMin = page.u32(oGenMin)
        h.genMax = page.u32(oGenMax)
        h.lastConsistent = LogPosition(rawValue: page.u64(oConsistent))
        h.lastConsistentTime = page.u64(oConsistentTime)
        h.pageCount = page.u32(oPageCount)
        h.rootPage = page.u32(oRoot)
        h.freeListHead = page.u32(oFreeHead)
        h.freeCount = page.u32(oFreeCount)
        h.dbtime = page.u64(oDbtime)
        h.isBackupImage = page.u32(oBackupImage) != 0
        var slots: [BackupInfo?] = []
        for i in 0..<3 {
            let o = oSlots + i * slotSize
            if page.u32(o) == 1 {
                slots.append(BackupInfo(genLow: page.u32(o + 4), genHigh: page.u32(o + 8),
                                        position: LogPosition(rawValue: page.u64(o + 16)), time: page.u64(o + 24)))
            } else {
                slots.append(nil)
            }
        }
        h.fullPrev = slots[0]; h.incPrev = slots[1]; h.fullCur = slots[2]
        guard PageFormat.supportedPageSizes.contains(Int(h.pageSize)), h.pageCount >= 3 else { return nil }
        return h
    }
}

/// A signature: random bits and a creation time (microseconds). ESE's SIGNATURE.
public struct Signature: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var random: UInt64
    public var time: UInt64

    public init(random: UInt64, time: UInt64) { self.random = random; self.time = time }

    public static func make() -> Signature {
        var g = SystemRandomNumberGenerator()
        return Signature(random: g.next(), time: Clock.microsecondsSinceEpoch())
    }

    func encode(_ page: UnsafeMutableRawBufferPointer, _ o: Int) {
        page.setU64(o, random); page.setU64(o + 8, time)
    }

    static func decode(_ page: UnsafeRawBufferPointer, _ o: Int) -> Signature {
        Signature(random: page.u64(o), time: page.u64(o + 8))
    }

    public var description: String {
        let r = String(random, radix: 16)
        return String(repeating: "0", count: 16 - r.count) + r + "@" + Clock.rfc3339(microseconds: time)
    }
}

/// A position in the log: generation and byte offset, ordered as the log is.
public struct LogPosition: Sendable, Comparable, Hashable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(generation: UInt32, offset: UInt32) { rawValue = UInt64(generation) << 32 | UInt64(offset) }
    public var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }
    public var offset: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    public static let zero = LogPosition(rawValue: 0)
    public static func < (a: LogPosition, b: LogPosition) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "(\(generation),\(offset))" }
}
