import Testing
@testable import JetStore

/// Redo page by page (`RedoBatch`): every group applied once, each page's in log order, and
/// a split's move applied to its source exactly as the source was at that point of the log —
/// neither before a change the log made to the source earlier nor after one it made later.
@Suite struct RedoBatchTests {
    /// A logged group: its page and, for a move, the page it takes cells from.
    struct Logged { let pgno: UInt32; let source: UInt32? }

    /// Transactions of random groups over pages 2…`pages + 1`: about one in three a move
    /// from one of those pages (now and then from its own page, which no engine logs but a
    /// damaged log may hold: the order must still end). Returns each transaction's payload
    /// and the groups in log order.
    static func randomLog(seed: UInt64, pages: Int, transactions: Int) -> ([[UInt8]], [Logged]) {
        var rng = SplitMix64(seed: seed)
        var payloads: [[UInt8]] = [], groups: [Logged] = []
        for t in 0..<transactions {
            var b = LogPayloadBuilder(commitTime: UInt64(t + 1))
            let after = UInt64(t + 2)
            b.dbtime(dbid: 1, after)
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let pgno = UInt32(2 + rng.next() % UInt64(pages))
                var source: UInt32?
                if rng.next() % 3 == 0 { source = UInt32(2 + rng.next() % UInt64(pages)) }
                var w = ByteWriter()
                (source.map { PageChange.move(source: $0, from: 1) } ?? .delete(slot: 0)).encode(into: &w, branch: false)
                b.page(dbid: 1, pgno: pgno, before: after - 1, after: after, count: 1, changes: w.bytes)
                groups.append(Logged(pgno: pgno, source: source))
            }
            payloads.append(b.w.bytes)
        }
        return (payloads, groups)
    }

    /// Runs a batch of `payloads` and checks the order it applied them in against `groups`.
    static func check(_ payloads: [[UInt8]], _ groups: [Logged], transactionBase: Int = 0) throws {
        let batch = RedoBatch()
        for (t, p) in payloads.enumerated() {
            try batch.file(p, transaction: transactionBase + t, position: LogPosition(generation: 1, offset: UInt32(t)), place: "test",
                           database: { #expect($0 == 1) }, create: { _, _, _, _ in Issue.record("no database is created") })
        }
        var applied: [Int] = []
        var done = Set<Int>()
        try batch.run({ page, work in
            let g = groups[work.seq]
            #expect(page.pgno == g.pgno)
            #expect(!done.contains(work.seq), "group \(work.seq) applied twice")
            // Each page's groups in log order.
            #expect(!done.contains { $0 > work.seq && groups[$0].pgno == g.pgno }, "group \(work.seq) after a later group of its page")
            // A move sees its source exactly as the log left it at that point.
            if let s = g.source {
                for (k, o) in groups.enumerated() where o.pgno == s {
                    #expect(done.contains(k) == (k < work.seq), "move \(work.seq) from page \(s): its group \(k)")
                }
            }
            // A page changes only after every earlier move that takes its cells.
            for (k, o) in groups.enumerated() where o.source == g.pgno && k < work.seq {
                #expect(done.contains(k), "group \(work.seq) of page \(g.pgno) before move \(k) took its cells")
            }
            #expect(work.transaction >= transactionBase)
            applied.append(work.seq)
            done.insert(work.seq)
        }, endPage: {})
        #expect(applied.sorted() == Array(0..<groups.count), "every group once")
        #expect(batch.isEmpty && batch.bytes == 0)
    }

    @Test(arguments: 0..<200) func randomBatchesApplyInAnOrderRedoInLogOrderWouldAgreeWith(seed: Int) throws {
        let (payloads, groups) = Self.randomLog(seed: UInt64(seed), pages: 2 + seed % 9, transactions: 1 + seed % 17)
        try Self.check(payloads, groups, transactionBase: seed)
    }

    /// Splits that each split the page the previous one made, the new pages numbered
    /// downwards (applied in page order, each waits on the next): the source of every move
    /// is brought to the move and no further.
    @Test func aChainOfSplitsIntoLowerPagesIsAppliedInLogOrder() throws {
        var payloads: [[UInt8]] = [], groups: [Logged] = []
        for k in 0..<300 {
            let pgno = UInt32(1000 - k), source = UInt32(1001 - k)
            var b = LogPayloadBuilder(commitTime: UInt64(k + 1))
            b.dbtime(dbid: 1, UInt64(k + 2))
            for (p, c) in [(pgno, PageChange.move(source: source, from: 1)), (source, .keep(count: 1)), (pgno, .delete(slot: 0))] {
                var w = ByteWriter()
                c.encode(into: &w, branch: false)
                b.page(dbid: 1, pgno: p, before: UInt64(k + 1), after: UInt64(k + 2), count: 1, changes: w.bytes)
                if case .move = c { groups.append(Logged(pgno: p, source: source)) } else { groups.append(Logged(pgno: p, source: nil)) }
            }
            payloads.append(b.w.bytes)
        }
        try Self.check(payloads, groups)
    }

    /// A payload whose structure is damaged is refused where it is filed, by place.
    @Test func aMalformedPayloadIsRefusedWhenFiled() throws {
        let (payloads, _) = Self.randomLog(seed: 7, pages: 4, transactions: 1)
        let batch = RedoBatch()
        #expect(throws: JetError.self) {
            try batch.file(Array(payloads[0].dropLast()), transaction: 0, position: LogPosition(generation: 1, offset: 0),
                           place: "gen 1 offset 0", database: { _ in }, create: { _, _, _, _ in })
        }
    }
}

/// Hostile logs through redo in batches: a transaction of the log damaged after it was
/// written, its record's checksum made to match (as a bug or an attacker could), is refused
/// with an ESE error or redone into pages that still pass their checks — recovery never traps.
@Suite struct RedoBatchHostileLogTests {
    /// An instance crashed after a checkpoint and 30 more transactions of random inserts
    /// (splits among them), its files as the crash left them.
    static func crashedInstance() throws -> [String: [UInt8]] {
        let fs = try SplitRedoTests.instance()
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
        var model: [[UInt8]: [UInt8]] = [:]
        try SplitRedoTests.load(inst, 0..<1500, model: &model)
        try inst.flushCheckpoint()
        try SplitRedoTests.load(inst, 1500..<2100, model: &model)
        fs.crash(afterOperations: 0)
        try? inst.close()
        fs.reboot(.dropUnsynced)
        var files: [String: [UInt8]] = [:]
        for name in try fs.list("/inst") { files[name] = fs.contents("/inst/" + name) }
        return files
    }

    @Test func aDamagedTransactionIsRefusedOrRedoneNeverTrapped() throws {
        let files = try Self.crashedInstance()
        let log = try #require(files[FileNames.currentLog])
        let fragments = try LogReader.parse(log, path: "edb.log").fragments.filter { $0.type == .full }
        #expect(fragments.count >= 20)
        var rng = SplitMix64(seed: 13)
        var refused = 0, opened = 0
        for _ in 0..<40 {
            let frag = fragments[Int(rng.next() % UInt64(fragments.count))]
            // The payload as logged (stored masked), damaged past its commit time, resealed.
            var payload = log[frag.payload].map { $0 ^ LogFormat.mask }
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = 8 + Int(rng.next() % UInt64(payload.count - 8))
                payload[at] ^= UInt8(truncatingIfNeeded: 1 + rng.next() % 255)
            }
            var record: [UInt8] = []
            payload.withUnsafeBytes { LogFormat.appendRecord(&record, type: .full, payload: $0) }
            var damaged = log
            damaged.replaceSubrange(frag.offset..<(frag.offset + record.count), with: record)
            let fs = MemoryFileSystem()
            fs.makeDirectories("/inst")
            for (name, bytes) in files { fs.setContents("/inst/" + name, name == FileNames.currentLog ? damaged : bytes) }
            do {
                let inst = try Instance.open(at: "/inst", fs: fs, owner: "t")
                opened += 1
                // Damage the checksum cannot see may leave keys out of order; reading must not trap.
                _ = try? inst.scan("db") { _, _ in true }
                try? inst.close()
            } catch let e as JetError {
                refused += 1
                #expect([.logReadVerifyFailure, .invalidDatabase, .databaseCorrupted, .readVerifyFailure].contains(e.code), "\(e)")
            }
        }
        #expect(refused + opened == 40)
        #expect(refused > 0, "damage to the changes a page takes is found")
    }
}
