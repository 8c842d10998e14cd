/// How replay walks records: fragments are reassembled into transactions across
/// generations, and a transaction cut by a crash in a rolled generation is abandoned when
/// the next generation starts with a new transaction. Recovery and `ReplayCheck` step
/// through the log with this one rule, so a log the check accepts is one recovery reads.
struct ReplayCursor {
    private var assembler = TransactionAssembler()

    /// Feeds the next fragment; returns a whole transaction's payload when one completes.
    mutating func feed(_ frag: LogReader.Fragment, _ gen: LogReader.Generation, firstInGeneration: Bool) throws -> [UInt8]? {
        if firstInGeneration && assembler.isOpen && (frag.type == .full || frag.type == .first) {
            assembler = TransactionAssembler()
        }
        return try assembler.feed(frag, gen)
    }
}

/// Proves, without applying anything, that recovery can replay a run of log generations
/// from `start`: `start` is where a record begins (or where the records of its generation
/// end), the transaction fragments from there follow each other as replay needs, and (with
/// `decode`) every whole transaction decodes into operations. Generations are fed in order,
/// each parsed whole from its header; records before `start` are not replayed.
package struct ReplayCheck {
    let start: LogPosition
    private var cursor = ReplayCursor()
    private var started = false
    /// Whole transactions from `start` on.
    package private(set) var transactions = 0

    package init(start: LogPosition) { self.start = start }

    /// True if a record of `g` begins at `offset`, or its records end there.
    package static func isRecordBoundary(_ g: LogReader.Generation, offset: Int) -> Bool {
        guard offset >= LogFormat.headerSize else { return false }
        if case .clean(let end) = g.end, end == offset { return true }
        return g.fragments.contains { $0.offset == offset }
    }

    package mutating func feed(_ g: LogReader.Generation, decode: Bool) throws {
        let generation = g.header.generation
        if generation < start.generation { return }
        var fragments = g.fragments[...]
        if generation == start.generation {
            guard Self.isRecordBoundary(g, offset: Int(start.offset)) else {
                throw JetError(.logReadVerifyFailure, "replay cannot start at offset \(start.offset) of \(g.path): no record begins there")
            }
            fragments = fragments.drop { $0.offset < Int(start.offset) }
            started = true
        } else if !started {
            throw JetError(.missingLogFile,
                           "log generation \(FileNames.archivedLog(start.generation)), where replay starts, comes before \(g.path) and was not given")
        }
        for (k, frag) in fragments.enumerated() {
            guard let payload = try cursor.feed(frag, g, firstInGeneration: k == 0) else { continue }
            if decode {
                let place = "\(g.path) offset \(frag.offset)"
                _ = try payload.withUnsafeBytes { try LogTransaction.decode($0, where: place) }
            }
            transactions += 1
        }
    }
}
