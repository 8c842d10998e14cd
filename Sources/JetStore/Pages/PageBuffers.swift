#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The memory behind the cache's frames: page-aligned buffers carved from slabs of 64 pages
/// and reused through a free list. Allocating each page on its own with page alignment cost
/// about half a page again in allocator slack (a 256 MiB cache took 440 MiB); carved from
/// slabs a frame costs its page. Slabs are kept for the cache's life: the cache is bounded, so
/// what it once needed it may need again. Frames are released from whatever thread drops the
/// last reference, hence the lock.
final class PageBuffers: @unchecked Sendable {
    let pageSize: Int
    static let pagesPerSlab = 64
    private var slabs: [UnsafeMutableRawBufferPointer] = []
    private var free: [UnsafeMutableRawPointer] = []
    private let lock = Lock()

    init(pageSize: Int) {
        self.pageSize = pageSize
    }

    deinit {
        for s in slabs { s.deallocate() }
    }

    /// A page-sized, page-aligned buffer (contents undefined).
    func take() -> UnsafeMutableRawBufferPointer {
        lock.lock()
        defer { lock.unlock() }
        if free.isEmpty {
            let slab = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize * Self.pagesPerSlab, alignment: 4096)
            slabs.append(slab)
            for k in stride(from: Self.pagesPerSlab - 1, through: 0, by: -1) {
                free.append(slab.baseAddress! + k * pageSize)
            }
        }
        return UnsafeMutableRawBufferPointer(start: free.removeLast(), count: pageSize)
    }

    /// Returns a buffer `take` handed out.
    func give(_ buffer: UnsafeMutableRawBufferPointer) {
        lock.lock()
        free.append(buffer.baseAddress!)
        lock.unlock()
    }

    /// Bytes held (slabs allocated), for tests.
    var bytesHeld: Int { lock.withLock { slabs.count * Self.pagesPerSlab * pageSize } }
}
