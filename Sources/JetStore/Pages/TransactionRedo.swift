/// The open transaction's changes as its log record will hold them (`LogTransaction`): in the
/// order they were made, as runs of consecutive changes to one page. The order across pages
/// is part of what redo needs: a split's new page is made from its old page's cells
/// (`PageChange.move`) before the old page drops them.
final class TransactionRedo {
    struct Run {
        let frame: PageFrame
        /// The run's change encodings in `bytes`.
        let start: Int
        var end: Int
        var count: Int
    }

    private(set) var bytes = ByteWriter(capacity: 4096)
    private(set) var runs: [Run] = []

    func append(_ change: PageChange, of frame: PageFrame, branch: Bool) {
        let start = bytes.bytes.count
        change.encode(into: &bytes, branch: branch)
        let end = bytes.bytes.count
        if let last = runs.last, last.frame === frame {
            runs[runs.count - 1].end = end
            runs[runs.count - 1].count += 1
        } else {
            runs.append(Run(frame: frame, start: start, end: end, count: 1))
        }
    }

    /// The encodings of one run.
    func withChanges<R>(of run: Run, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[run.start..<run.end])) }
    }

    /// Empties it for the next transaction; the buffers' memory is kept unless a large
    /// transaction (values in overflow pages) grew them past `retained` bytes / `retainedRuns`.
    func reset() {
        bytes.bytes.removeAll(keepingCapacity: bytes.bytes.capacity <= Self.retained)
        runs.removeAll(keepingCapacity: runs.capacity <= Self.retainedRuns)
    }

    static let retained = 1 << 20
    static let retainedRuns = 4096
}
