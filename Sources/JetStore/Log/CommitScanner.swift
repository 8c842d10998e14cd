extension LogReader {
    /// Finds the commits of consecutive log generations fed oldest first, each parsed whole
    /// (a backup's copied generations): a transaction cut at the end of one generation is
    /// carried into the next, and one cut by a crash in a rolled generation is abandoned as
    /// replay abandons it. A transaction already under way at the first fragment fed is left
    /// out: its commit time is in its first record, which came before.
    public struct CommitScanner {
        private var open = false
        private var started = false
        /// The open transaction's first payload bytes, up to its commit time's eight.
        private var head: [UInt8] = []

        public init() {}

        /// The commits that end in `g`, oldest first. Only each transaction's first eight
        /// payload bytes (its commit time) are read; nothing is reassembled, and a generation
        /// parsed without unmasking (`LogReader.parse(unmask: false)`) is read as well as one
        /// unmasked. The fragments' order is checked as replay checks it.
        public mutating func feed(_ g: Generation) throws -> [Commit] {
            try g.bytes.withUnsafeBytes {
                try feed(g.scan, bytes: $0, masked: g.masked)
            }
        }

        /// `feed` for a generation scanned where its bytes are held (`LogReader.scan`):
        /// `bytes` are the file's, `masked` as the file holds them.
        public mutating func feed(_ g: Scan, bytes: UnsafeRawBufferPointer, masked: Bool) throws -> [Commit] {
            var out: [Commit] = []
            for (k, frag) in g.fragments.enumerated() {
                let opens = frag.type == .full || frag.type == .first
                if !started {
                    guard opens else { continue }
                    started = true
                } else if k == 0 && open && opens {
                    open = false
                }
                if opens {
                    guard !open else { throw TransactionAssembler.outOfOrder("\(g.path) offset \(frag.offset)") }
                    head.removeAll(keepingCapacity: true)
                } else {
                    guard open else { throw TransactionAssembler.outOfOrder("\(g.path) offset \(frag.offset)") }
                }
                let want = 8 - head.count
                if want > 0 {
                    let take = UnsafeRawBufferPointer(rebasing: bytes[frag.payload.lowerBound..<min(frag.payload.upperBound, frag.payload.lowerBound + want)])
                    head.append(contentsOf: masked ? take.map { $0 ^ LogFormat.mask } : Array(take))
                }
                open = frag.type == .first || frag.type == .middle
                guard !open else { continue }
                let time = try head.withUnsafeBytes { try LogTransaction.commitTime($0, where: "\(g.path) offset \(frag.offset)") }
                out.append(Commit(time: time, end: LogPosition(generation: g.header.generation,
                                                               offset: UInt32(frag.offset + LogFormat.recordSize(payload: frag.payload.count)))))
            }
            return out
        }
    }
}
