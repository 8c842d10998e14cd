#if canImport(Glibc)
import Glibc
#endif

/// A file's bytes read whole for one pass over them (a log generation a backup checks,
/// hashes and writes out): mapped read-only where the file system allows, received into a
/// page-aligned allocation (from an owner), else held in an array. A mapping puts the page
/// cache's pages in the process: nothing is copied in and no fresh memory is faulted in and
/// zeroed, which for the backup's copy of log generations was a third of its CPU time
/// (README, "Runs of 2026-12-06, fourth session").
///
/// A mapped file must not shrink while it is mapped (a read past its new end is SIGBUS):
/// only files nothing truncates are mapped — an instance's finished generations, which a
/// backup pins until it has copied them.
public final class FileBytes: @unchecked Sendable {
    private let base: UnsafeRawPointer?
    public let count: Int
    private let storage: [UInt8]?
    /// Set when `base` is an allocation of this object's own (not a mapping).
    private let allocated: Bool

    /// Bytes held in an array (a file system without mappings).
    public init(_ bytes: [UInt8]) {
        storage = bytes
        base = nil
        count = bytes.count
        allocated = false
    }

    /// A read-only mapping of `count` bytes at `base`, unmapped when this goes away.
    init(mapping base: UnsafeRawPointer, count: Int) {
        self.base = base
        self.count = count
        storage = nil
        allocated = false
    }

    /// The alignment (and length multiple) of bytes a direct write takes as they are: a
    /// mapping's and a `pageAligned` allocation's start.
    public static let pageAlignment = 4096

    /// `count` bytes in a page-aligned allocation of their own, written once by `fill`
    /// (bytes received): like a mapping's, whole pages of them can be written out with
    /// O_DIRECT, without a copy through the page cache.
    public init(pageAligned count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: Self.pageAlignment)
        do {
            try fill(UnsafeMutableRawBufferPointer(rebasing: b[0..<count]))
        } catch {
            b.deallocate()
            throw error
        }
        base = UnsafeRawPointer(b.baseAddress!)
        self.count = count
        storage = nil
        allocated = true
    }

    deinit {
        guard let base else { return }
        if allocated {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        } else {
            _ = munmap(UnsafeMutableRawPointer(mutating: base), count)
        }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let base { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        return try storage!.withUnsafeBytes(body)
    }

    /// A copy in an array.
    public var array: [UInt8] { storage ?? withUnsafeBytes { [UInt8]($0) } }
}
