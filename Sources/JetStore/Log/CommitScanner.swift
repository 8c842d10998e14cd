extension LogReader {
    /// Finds the commits of consecutive log generations fed oldest first, each parsed whole
    /// (a backup's copied generations): a transaction cut at the end of one generation is
    /// carried into the next, and one cut by a crash in a rolled generation is abandoned as
    /// replay abandons it. A transaction already under way at the first fragment fed is left
    /// out: its commit time is in its first record, which came before.
    public struct CommitScanner {
        private var assembler = TransactionAssembler()
        private var started = false

        public init() {}

        /// The commits that end in `g`, oldest first.
        public mutating func feed(_ g: Generation) throws -> [Commit] {
            var out: [Commit] = []
            for (k, frag) in g.fragments.enumerated() {
                let opens = frag.type == .full || frag.type == .first
                if !started {
                    guard opens else { continue }
                    started = true
                } else if k == 0 && assembler.isOpen && opens {
                    assembler = TransactionAssembler()
                }
                guard let payload = try assembler.feed(frag, g) else { continue }
                let time = try payload.withUnsafeBytes { try LogTransaction.commitTime($0, where: "\(g.path) offset \(frag.offset)") }
                out.append(Commit(time: time, end: LogPosition(generation: g.header.generation,
                                                               offset: UInt32(frag.offset + LogFormat.recordSize(payload: frag.payload.count)))))
            }
            return out
        }
    }
}
