/// The log generations a restore hands to recovery one at a time, oldest first, from the
/// checkpoint's generation on, as it reads them from where they were kept (a backup set):
/// each generation is read, decompressed and checked once, then replayed, and never read
/// back from the instance's directory.
///
/// The caller owns the checks of what it hands over: each generation is parsed whole
/// (`LogReader.parse`, every record's checksum) and checked as a link of its chain
/// (`LogChainFault`, mapped to the errors of its situation), and is already stored in the
/// instance's directory under its archived name (`FileNames.archivedLog`), where the
/// instance's log continues from it. Recovery replays it from the checkpoint's position on.
public protocol LogFeed: AnyObject {
    /// The next generation, or nil after the last. `isCancelled` is recovery's own.
    func next(isCancelled: () -> Bool) throws -> LogReader.Generation?
}
