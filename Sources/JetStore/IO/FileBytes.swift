#if canImport(Glibc)
import Glibc
#endif

/// A file's bytes read whole for one pass over them (a log generation a backup checks,
/// hashes and writes out): mapped read-only where the file system allows, else held in an
/// array. A mapping puts the page cache's pages in the process: nothing is copied in and no
/// fresh memory is faulted in and zeroed, which for the backup's copy of log generations
/// was a third of its CPU time (README, "Runs of 2026-12-06, fourth session").
///
/// A mapped file must not shrink while it is mapped (a read past its new end is SIGBUS):
/// only files nothing truncates are mapped — an instance's finished generations, which a
/// backup pins until it has copied them.
public final class FileBytes: @unchecked Sendable {
    private let base: UnsafeRawPointer?
    public let count: Int
    private let storage: [UInt8]?

    /// Bytes held in an array (a file system without mappings, or bytes received).
    public init(_ bytes: [UInt8]) {
        storage = bytes
        base = nil
        count = bytes.count
    }

    /// A read-only mapping of `count` bytes at `base`, unmapped when this goes away.
    init(mapping base: UnsafeRawPointer, count: Int) {
        self.base = base
        self.count = count
        storage = nil
    }

    deinit {
        if let base { _ = munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let base { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        return try storage!.withUnsafeBytes(body)
    }

    /// A copy in an array.
    public var array: [UInt8] { storage ?? withUnsafeBytes { [UInt8]($0) } }
}
