/// A database's page file: reads verify, writes seal (page number and checksum).
/// The header lives on page 0 and is mirrored to its shadow, page 1, on every write.
final class DatabaseFile: @unchecked Sendable {
    let name: String
    let path: String
    let file: any StorageFile
    let pageSize: Int
    var dbid: UInt16 { UInt16(truncatingIfNeeded: header.dbid) }
    /// The in-memory header; page 0 in the cache carries the same allocation fields.
    var header: DatabaseHeader
    /// Written since its last fsync (`sync`): a checkpoint or a new doublewrite epoch fsyncs
    /// only the files that need it.
    private(set) var unsynced = false

    init(name: String, path: String, file: any StorageFile, header: DatabaseHeader) {
        self.name = name
        self.path = path
        self.file = file
        self.header = header
        self.pageSize = Int(header.pageSize)
    }

    /// Reads and verifies page `pgno`. An all-zero page is accepted only when `allowUninitialized`.
    func readPage(_ pgno: UInt32, into buffer: UnsafeMutableRawBufferPointer, allowUninitialized: Bool = false) throws {
        let n = try file.read(at: Int64(pgno) * Int64(pageSize), into: buffer)
        if n < pageSize {
            (buffer.baseAddress! + n).initializeMemory(as: UInt8.self, repeating: 0, count: pageSize - n)
        }
        let verdict = PageFormat.verify(UnsafeRawBufferPointer(buffer), pgno: pgno)
        switch verdict {
        case .valid: return
        case .uninitialized where allowUninitialized: return
        default: throw PageFormat.error(verdict, file: path, pgno: pgno)
        }
    }

    /// Seals and writes a page; page 0 is written to the shadow too (`syncBetween`: with an
    /// fsync between, so a crash cannot tear both).
    func writePage(_ pgno: UInt32, _ buffer: UnsafeMutableRawBufferPointer, syncBetween: Bool = false, sealed: Bool = false) throws {
        if !sealed { PageFormat.seal(buffer, pgno: pgno) }
        unsynced = true
        try file.write(at: Int64(pgno) * Int64(pageSize), UnsafeRawBufferPointer(buffer))
        if pgno == PageFormat.headerPage {
            if syncBetween { try sync() }
            try writeShadow(buffer)
        }
    }

    /// fsyncs the file. Everything written before is durable once this returns.
    func sync() throws {
        try file.sync()
        unsynced = false
    }

    private func writeShadow(_ page0: UnsafeMutableRawBufferPointer) throws {
        let shadow = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 64)
        defer { shadow.deallocate() }
        shadow.copyMemory(from: UnsafeRawBufferPointer(page0))
        PageFormat.seal(shadow, pgno: PageFormat.shadowPage)
        unsynced = true
        try file.write(at: Int64(pageSize), UnsafeRawBufferPointer(shadow))
    }

    /// Writes the whole in-memory header to pages 0 and 1 and syncs: used outside the log
    /// (open, clean shutdown, creation), when no logged change of page 0 is pending. Not
    /// through the doublewrite file: the shadow, written after page 0 is synced, is its copy.
    func writeHeaderDirectly(_ page0: UnsafeMutableRawBufferPointer) throws {
        header.encode(into: page0)
        try writePage(PageFormat.headerPage, page0, syncBetween: true)
        try sync()
    }

    /// Reads the header: page 0, or its shadow if page 0 is damaged (then page 0 is rewritten
    /// from the shadow). Both damaged: `JET_errReadVerifyFailure`.
    static func readHeader(file: any StorageFile, path: String, repair: Bool) throws -> (DatabaseHeader, repaired: Bool) {
        // The page size is not known yet: read the largest and look at the first page's field.
        let probe = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 64)
        defer { probe.deallocate() }
        probe.initializeMemory(as: UInt8.self, repeating: 0)
        let n = try file.read(at: 0, into: probe)
        func headerAt(_ offset: Int, pgno: UInt32, size: Int) -> DatabaseHeader? {
            guard offset + size <= n else { return nil }
            let page = UnsafeRawBufferPointer(rebasing: probe[offset..<(offset + size)])
            guard PageFormat.verify(page, pgno: pgno) == .valid, let h = DatabaseHeader.decode(page),
                  Int(h.pageSize) == size else { return nil }
            return h
        }
        for size in PageFormat.supportedPageSizes {
            if let h = headerAt(0, pgno: 0, size: size) { return (h, false) }
        }
        for size in PageFormat.supportedPageSizes {
            if let h = headerAt(size, pgno: 1, size: size) {
                if repair {
                    let page = UnsafeMutableRawBufferPointer(rebasing: probe[size..<(2 * size)])
                    PageFormat.seal(page, pgno: 0)
                    try file.write(at: 0, UnsafeRawBufferPointer(page))
                    try file.sync()
                }
                return (h, true)
            }
        }
        if n == 0 {
            throw JetError(.invalidDatabase, "\(path) is empty: not a database; remove it or restore it from a backup")
        }
        throw JetError(.readVerifyFailure,
                       "the header of \(path) (page 0) and its shadow (page 1) are both damaged or not a jetbackup database; "
                           + "restore it from a backup")
    }
}
