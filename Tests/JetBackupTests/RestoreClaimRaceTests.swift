import Testing
@testable import JetBackup
@testable import JetStore

/// Two restores into one TARGET, the loser's exclusive create of the restore marker failing
/// because the winner held it — and the winner finishing (marker removed, TARGET full)
/// before the loser looks again. Found by `make stress` (1 round in 100 of
/// `RestoreSafetyTests.twoRestoresIntoTheSameTarget` exited 74, JET_errDiskIO "File exists").
@Suite struct RestoreClaimRaceTests {
    /// A memory file system on which the first exclusive create of the restore marker finds
    /// the other restore's marker (as `open(O_EXCL)` reports it) just as that restore ends:
    /// by the time the caller looks, the marker is gone and TARGET holds an instance.
    final class RacingFileSystem: ForwardingFileSystem, @unchecked Sendable {
        private var raced = false

        init() { super.init(MemoryFileSystem()) }

        override func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
            if mode == .createNew, path.hasSuffix("/" + FileNames.restoreMarker), !raced {
                raced = true
                let dir = FilePaths.directory(of: path)
                try inner.open(FilePaths.join(dir, FileNames.parameters), .createNew).close()
                throw JetError(.diskIO, "I/O error while trying to open \(path): File exists")
            }
            return try inner.open(path, mode)
        }
    }

    @Test(arguments: [false, true])
    func loserIsRefusedAsNotEmptyWhenTheWinnerFinishedMeanwhile(targetExists: Bool) throws {
        let fs = RacingFileSystem()
        try fs.createDirectory("/r")
        if targetExists { try fs.createDirectory("/r/t") }
        do {
            _ = try RestoreInstance(fs: fs).claim("/r/t", owner: "loser")
            Issue.record("the loser claimed a TARGET the winner had filled")
        } catch let e as JetError {
            #expect(e.code == .invalidPath, "\(e.code.name): \(e.message)")
            #expect(e.message.contains("not empty"), "\(e.message)")
        }
        // The winner's instance is left as it was.
        #expect(try fs.list("/r/t") == [FileNames.parameters])
    }
}
