/// What a committed transaction writes to the log: physiological redo (ESE's log records).
///
/// The changes are logged in the order they were made, as page groups: runs of consecutive
/// changes to one page, each with the page's dbtime before the transaction and the dbtime it
/// has after (the database's, bumped once per transaction) — a page changed, then another,
/// then the first again has two groups. A change is a record inserted, replaced or deleted at
/// a slot, a split's new page made from the cells of the page it splits (named, not copied:
/// ESE's split record), a page formatted with given records, an overflow page's bytes, a
/// free-list link, the header's allocation fields. Redo re-runs exactly those changes on the
/// page, and only on the version they were made from (its dbtime is the group's "before"):
/// the log grows with what was committed, not with the pages it touched. Torn pages are not
/// repaired from the log but from the doublewrite file (`Doublewrite`), before redo.
///
/// A split's new page made from its old page's cells can be redone only from the old page as
/// it was before the split: the engine writes the new page no later than the old one
/// (`PageCache` write groups), and while a full backup copies the database files, whose pages
/// it reads at different times, splits log the moved cells themselves (`format`).
///
/// Payload:
/// ```
/// u64 commit time (µs since the epoch, from the engine's clock; never less than the previous commit's)
/// then operations until the end:
/// 1 dbtime:  varint dbid, varint dbtime — the database's dbtime after this transaction;
///            the page groups of that database below carry it as their "after"
/// 2 page:    varint dbid, varint pgno, varint (after − before), varint n, n changes
/// 3 create database: u16 dbid, u32 page size, 16 signature, name (u16 length + UTF-8)
/// ```
/// Changes (`PageChange`), each a tag and its fields:
/// ```
/// 1 insert:     varint slot, cell
/// 2 delete:     varint slot
/// 3 replace:    varint slot, cell                       (delete then insert at the slot)
/// 4 format:     u8 page type, varint n, n cells          (the whole page: a split's new page, a new root)
/// 5 keep:       varint n                                 (drop the cells from slot n on, repack: a split's old page)
/// 6 overflow:   varint next, varint n, n bytes           (the whole page)
/// 7 free:       varint next                              (the whole page: a free-list page)
/// 8 allocation: varint page count, varint root, varint free-list head, varint free count (page 0)
/// 9 header:     varint n, n bytes                        (page 0's header fields from byte 32)
/// 10 move:      varint source page, varint n             (the whole page: cells n… of the source
///                                                          page, of its type; a split's new page)
/// cell: u8 kind, varint key length, then
///       kind 0 (leaf, value inline):       varint value length, key, value
///       kind 1 (leaf, value in overflow):  varint value length, varint first overflow page, key
///       kind 2 (branch):                   varint child, key
/// ```
public struct LogTransaction: Sendable, Equatable {
    public var commitTime: UInt64
    public var operations: [LogOperation]

    public init(commitTime: UInt64, operations: [LogOperation]) {
        self.commitTime = commitTime; self.operations = operations
    }

    static let dbtimeTag: UInt8 = 1
    static let pageTag: UInt8 = 2
    static let createTag: UInt8 = 3

    static func malformed(_ place: String) -> JetError {
        JetError(.logReadVerifyFailure, "log record at \(place) has a valid checksum but a malformed body; the log is damaged: restore from a backup")
    }

    /// The commit time alone (the first eight bytes), without decoding the changes.
    public static func commitTime(_ payload: UnsafeRawBufferPointer, where place: String) throws -> UInt64 {
        var r = ByteReader(payload, corrupt: malformed(place))
        return try r.u64()
    }

    /// Decodes a transaction payload. `where` names generation and offset for errors.
    public static func decode(_ payload: UnsafeRawBufferPointer, where place: String) throws -> LogTransaction {
        var ops: [LogOperation] = []
        let time = try walk(payload, where: place, page: { dbid, pgno, before, after, n, r in
            var changes: [PageChange] = []
            changes.reserveCapacity(min(n, 64))
            for _ in 0..<n { changes.append(try PageChange.decode(&r)) }
            ops.append(.page(dbid: dbid, pgno: pgno, before: before, after: after, changes: changes))
        }, create: { ops.append($0) })
        return LogTransaction(commitTime: time, operations: ops)
    }

    /// Reads a transaction payload's structure and returns its commit time: each page group's
    /// database, page, dbtimes and change count go to `page` with the reader at its first
    /// change (`page` reads exactly that many changes, `PageChange.decode`); each database
    /// created goes to `create`. `decode` is this with the changes kept; redo (`RedoBatch`)
    /// keeps where each group's changes are instead and decodes them when it applies them.
    static func walk(_ payload: UnsafeRawBufferPointer, where place: String,
                     page: (_ dbid: UInt16, _ pgno: UInt32, _ before: UInt64, _ after: UInt64, _ count: Int, _ r: inout ByteReader) throws -> Void,
                     create: (LogOperation) throws -> Void) throws -> UInt64 {
        let corrupt = malformed(place)
        var r = ByteReader(payload, corrupt: corrupt)
        let time = try r.u64()
        var after: [UInt16: UInt64] = [:]
        while r.remaining > 0 {
            switch try r.u8() {
            case dbtimeTag:
                let dbid = UInt16(try r.varint(max: UInt64(UInt16.max)))
                let t = try r.varint()
                guard t > 0 else { throw corrupt }
                after[dbid] = t
            case pageTag:
                let dbid = UInt16(try r.varint(max: UInt64(UInt16.max)))
                let pgno = UInt32(try r.varint(max: UInt64(UInt32.max)))
                guard let a = after[dbid] else { throw corrupt }
                let delta = try r.varint()
                guard delta > 0, delta <= a else { throw corrupt }
                let n = Int(try r.varint(max: 1 << 16))
                try page(dbid, pgno, a - delta, a, n, &r)
            case createTag:
                let dbid = try r.u16(), ps = try r.u32()
                let sig = Signature(random: try r.u64(), time: try r.u64())
                let name = try r.string()
                try create(.createDatabase(dbid: dbid, pageSize: ps, signature: sig, name: name))
            default:
                throw corrupt
            }
        }
        return time
    }
}

/// One operation of a transaction, as decoded.
public enum LogOperation: Sendable, Equatable {
    /// The changes of one page, made from the version at dbtime `before`; it is at `after` then.
    case page(dbid: UInt16, pgno: UInt32, before: UInt64, after: UInt64, changes: [PageChange])
    case createDatabase(dbid: UInt16, pageSize: UInt32, signature: Signature, name: String)
}

/// A change to one page (see `LogTransaction` for the encoding; `PageChange.apply` for what
/// each does). Cells are in the page's own layout (`Node`).
public enum PageChange: Sendable, Equatable {
    case insert(slot: Int, cell: [UInt8])
    case delete(slot: Int)
    case replace(slot: Int, cell: [UInt8])
    case format(type: PageFormat.PageType, cells: [[UInt8]])
    case keep(count: Int)
    case overflow(next: UInt32, bytes: [UInt8])
    case free(next: UInt32)
    case allocation(pageCount: UInt32, root: UInt32, freeListHead: UInt32, freeCount: UInt32)
    case header(bytes: [UInt8])
    /// The page becomes a page of `source`'s type holding `source`'s cells from slot `from` on,
    /// as `source` is when the change is made (a split's new page; `source` then keeps the
    /// cells before `from`).
    case move(source: UInt32, from: Int)

    static let insertTag: UInt8 = 1, deleteTag: UInt8 = 2, replaceTag: UInt8 = 3, formatTag: UInt8 = 4
    static let keepTag: UInt8 = 5, overflowTag: UInt8 = 6, freeTag: UInt8 = 7, allocationTag: UInt8 = 8
    static let headerTag: UInt8 = 9, moveTag: UInt8 = 10

    /// True for the changes that define the whole page: redo may apply them to a page that was
    /// never written or cannot be read (a page allocated after the copy on disk was made).
    public var definesWholePage: Bool {
        switch self {
        case .format, .overflow, .free, .move: true
        default: false
        }
    }

    /// Appends the encoding; `branch` says how to read the cells (those of a branch page).
    func encode(into w: inout ByteWriter, branch: Bool) {
        switch self {
        case .insert(let slot, let cell):
            w.u8(Self.insertTag); w.varint(slot); Self.encodeCell(cell, branch: branch, into: &w)
        case .delete(let slot):
            w.u8(Self.deleteTag); w.varint(slot)
        case .replace(let slot, let cell):
            w.u8(Self.replaceTag); w.varint(slot); Self.encodeCell(cell, branch: branch, into: &w)
        case .format(let type, let cells):
            w.u8(Self.formatTag); w.u8(type.rawValue); w.varint(cells.count)
            for c in cells { Self.encodeCell(c, branch: type == .branch, into: &w) }
        case .keep(let count):
            w.u8(Self.keepTag); w.varint(count)
        case .overflow(let next, let bytes):
            w.u8(Self.overflowTag); w.varint(next); w.varint(bytes.count); w.raw(bytes)
        case .free(let next):
            w.u8(Self.freeTag); w.varint(next)
        case .allocation(let pc, let root, let head, let count):
            w.u8(Self.allocationTag); w.varint(pc); w.varint(root); w.varint(head); w.varint(count)
        case .header(let bytes):
            w.u8(Self.headerTag); w.varint(bytes.count); w.raw(bytes)
        case .move(let source, let from):
            w.u8(Self.moveTag); w.varint(source); w.varint(from)
        }
    }

    static func decode(_ r: inout ByteReader) throws -> PageChange {
        let maxSlot = UInt64(PageFormat.supportedPageSizes.last! / 2)
        switch try r.u8() {
        case insertTag: return .insert(slot: Int(try r.varint(max: maxSlot)), cell: try decodeCell(&r))
        case deleteTag: return .delete(slot: Int(try r.varint(max: maxSlot)))
        case replaceTag: return .replace(slot: Int(try r.varint(max: maxSlot)), cell: try decodeCell(&r))
        case formatTag:
            guard let type = PageFormat.PageType(rawValue: try r.u8()), type == .leaf || type == .branch else { throw r.corrupt }
            let n = Int(try r.varint(max: maxSlot))
            var cells: [[UInt8]] = []
            cells.reserveCapacity(n)
            for _ in 0..<n { cells.append(try decodeCell(&r)) }
            return .format(type: type, cells: cells)
        case keepTag: return .keep(count: Int(try r.varint(max: maxSlot)))
        case overflowTag:
            let next = UInt32(try r.varint(max: UInt64(UInt32.max)))
            let n = Int(try r.varint(max: UInt64(PageFormat.supportedPageSizes.last!)))
            return .overflow(next: next, bytes: [UInt8](try r.raw(n)))
        case freeTag: return .free(next: UInt32(try r.varint(max: UInt64(UInt32.max))))
        case allocationTag:
            let m = UInt64(UInt32.max)
            return .allocation(pageCount: UInt32(try r.varint(max: m)), root: UInt32(try r.varint(max: m)),
                               freeListHead: UInt32(try r.varint(max: m)), freeCount: UInt32(try r.varint(max: m)))
        case headerTag:
            let n = Int(try r.varint(max: UInt64(PageFormat.supportedPageSizes.last!)))
            return .header(bytes: [UInt8](try r.raw(n)))
        case moveTag:
            let source = UInt32(try r.varint(max: UInt64(UInt32.max)))
            guard source >= PageFormat.firstDataPage else { throw r.corrupt }
            return .move(source: source, from: Int(try r.varint(max: maxSlot)))
        default:
            throw r.corrupt
        }
    }

    static let leafInline: UInt8 = 0, leafOverflow: UInt8 = 1, branchCell: UInt8 = 2

    /// A node cell (`Node`'s layout) in its compact log form.
    static func encodeCell(_ cell: [UInt8], branch: Bool, into w: inout ByteWriter) {
        cell.withUnsafeBytes { c in
            let kl = Int(c.u16(0))
            let key = UnsafeRawBufferPointer(rebasing: c[Node.cellHeader..<(Node.cellHeader + kl)])
            if branch {
                w.u8(branchCell); w.varint(kl); w.varint(c.u32(4)); w.raw(key)
            } else if (c[2] & Node.overflowFlag) != 0 {
                w.u8(leafOverflow); w.varint(kl); w.varint(c.u32(4))
                w.varint(c.u32(Node.cellHeader + kl)); w.raw(key)
            } else {
                w.u8(leafInline); w.varint(kl); w.varint(c.u32(4)); w.raw(key)
                w.raw(UnsafeRawBufferPointer(rebasing: c[(Node.cellHeader + kl)...]))
            }
        }
    }

    /// A compact cell back in `Node`'s layout.
    static func decodeCell(_ r: inout ByteReader) throws -> [UInt8] {
        let kind = try r.u8()
        let kl = Int(try r.varint(max: UInt64(BTree.maxKeyLength)))
        switch kind {
        case leafInline:
            let vl = Int(try r.varint(max: UInt64(PageFormat.supportedPageSizes.last!)))
            let key = try r.raw(kl), value = try r.raw(vl)
            return Node.leafCell(key: key, valueLength: vl, inline: value, overflow: 0)
        case leafOverflow:
            let vl = Int(try r.varint(max: UInt64(BTree.maxValueLength)))
            let first = UInt32(try r.varint(max: UInt64(UInt32.max)))
            return Node.leafCell(key: try r.raw(kl), valueLength: vl, inline: nil, overflow: first)
        case branchCell:
            let child = UInt32(try r.varint(max: UInt64(UInt32.max)))
            return Node.branchCell(key: try r.raw(kl), child: child)
        default:
            throw r.corrupt
        }
    }
}

/// Builds a transaction payload without intermediate arrays.
struct LogPayloadBuilder {
    var w = ByteWriter(capacity: 4096)

    init(commitTime: UInt64) { w.u64(commitTime) }


    mutating func dbtime(dbid: UInt16, _ after: UInt64) {
        w.u8(LogTransaction.dbtimeTag); w.varint(UInt64(dbid)); w.varint(after)
    }

    /// A page group whose changes are already encoded (`TransactionRedo`).
    mutating func page(dbid: UInt16, pgno: UInt32, before: UInt64, after: UInt64, count: Int, changes: UnsafeRawBufferPointer) {
        w.u8(LogTransaction.pageTag); w.varint(UInt64(dbid)); w.varint(pgno); w.varint(after - before)
        w.varint(count); w.raw(changes)
    }

    mutating func page(dbid: UInt16, pgno: UInt32, before: UInt64, after: UInt64, count: Int, changes: [UInt8]) {
        changes.withUnsafeBytes { page(dbid: dbid, pgno: pgno, before: before, after: after, count: count, changes: $0) }
    }

    mutating func createDatabase(dbid: UInt16, pageSize: UInt32, signature: Signature, name: String) {
        w.u8(LogTransaction.createTag); w.u16(dbid); w.u32(pageSize)
        w.u64(signature.random); w.u64(signature.time)
        w.string(name)
    }
}
