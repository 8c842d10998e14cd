import JetStore

/// A set's log generations handed to the engine's recovery during a restore (`LogFeed`):
/// each is read, decompressed and checked once by the set's pass (`SetVerifier.Pass`),
/// written into the target as an archived generation, and replayed before the next one is
/// read. Recovery's replay takes the place of verify's replay check (the same `ReplayCursor`).
final class SetLogFeed: LogFeed {
    let pass: SetVerifier.Pass
    let sink: SetVerifier.Sink
    let progress: (Int64, Int64, String) -> Void

    init(pass: SetVerifier.Pass, sink: SetVerifier.Sink, progress: @escaping (Int64, Int64, String) -> Void) {
        self.pass = pass
        self.sink = sink
        self.progress = progress
    }

    func next(isCancelled: () -> Bool) throws -> LogReader.Generation? {
        try pass.nextLog(sink: sink, isCancelled: isCancelled, progress: progress)
    }

    /// After recovery: the generations it did not ask for (it stopped at a point) are checked
    /// all the same, and not written, so a restore still proves the whole set, as verify does.
    func finish(isCancelled: () -> Bool) throws {
        while try pass.nextLog(sink: nil, isCancelled: isCancelled, progress: progress) != nil {}
    }
}
