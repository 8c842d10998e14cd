import Testing
@testable import JetStore

/// The cache's frame memory: aligned, never shared by two live frames, reused, and bounded by
/// the cache size rather than by how many pages passed through the cache.
@Suite struct PageBuffersTests {
    @Test func buffersAreAlignedDistinctAndReused() {
        let pool = PageBuffers(pageSize: 8192)
        var taken = (0..<200).map { _ in pool.take() }
        let starts = taken.map { Int(bitPattern: $0.baseAddress!) }.sorted()
        #expect(starts.allSatisfy { $0 % 4096 == 0 })
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 >= 8192 }, "two buffers overlap")
        let held = pool.bytesHeld
        #expect(held == 4 * PageBuffers.pagesPerSlab * 8192)
        for b in taken { pool.give(b) }
        taken = (0..<200).map { _ in pool.take() }
        #expect(pool.bytesHeld == held, "buffers given back were not reused")
        for b in taken { pool.give(b) }
    }

    /// Many more pages than the cache holds pass through it: its memory stays at its bound
    /// (plus one slab and the pages one transaction pins), whatever went before.
    @Test func cacheMemoryStaysAtItsBound() throws {
        let fs = try makeMemoryInstance { $0.cacheSize = 64 * 4096 }
        let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
        defer { try? inst.close() }
        for batch in 0..<400 {
            try inst.commit((0..<10).map { i in .put(database: "db", key: key(batch * 10 + i), value: value(i, batch, size: 300)) })
        }
        let held = inst.engine.withLock { inst.cache.bytesHeld }
        #expect(held <= (64 + 2 * PageBuffers.pagesPerSlab) * 4096, "cache holds \(held) bytes for a bound of \(64 * 4096)")
        // A scan pins a batch of pages at a time (up to 4 MiB) and may grow the cache past
        // its bound for that batch; afterwards the cache is back within it.
        let pages = try allRecords(inst).count * 300 / 4096
        #expect(pages > 4 * 64, "the test must push several times the cache's pages through it")
        #expect(inst.engine.withLock { inst.cache.count } <= 64, "the cache kept the pages a scan pinned")
    }
}
