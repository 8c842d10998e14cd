import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// A backup writes the log generations it copies with O_DIRECT when they come whole pages at
/// a page-aligned address (mapped by the engine, or received from an owner), and through the
/// page cache when they are compressed; either way the set restores to what the instance held.
@Suite struct LogCopyDirectTests {
    /// An incremental, in this process or through the instance's owner (served on its
    /// control socket), with the set's opens recorded (`DirectoryOpens`).
    static func run(compress: Int?, throughOwner: Bool = false) throws {
        let s = Scratch()
        defer { s.remove() }
        let (_, inst, set) = try SetPrefetchTests.setWithAFullBackup(s, serveControl: throughOwner)
        let recorder = DirectoryOpens(dir: set)
        var o = SetPrefetchTests.options(set, fs: recorder)
        o.compressionLevel = compress
        let sum = try SetPrefetchTests.run(inst, o, throughOwner: throughOwner)
        // (name, opened direct, still direct after the copy) of each log file created.
        let logs = recorder.opens.filter { $0.name.hasPrefix("edb") && $0.mode != .readOnly }
            .map { ($0.name, $0.mode == .createNewDirect, ($0.file as? PosixFile)?.direct.isSet ?? false) }
        #expect(!logs.isEmpty && logs.count == sum.generationsCopied?.count, "\(logs.count) log files created")
        for (name, asked, still) in logs {
            if compress == nil {
                #expect(asked && still, "\(name) was written through the page cache")
            } else {
                #expect(!asked, "\(name) (compressed) was asked for direct")
            }
        }
        try SetPrefetchTests.closeAndRestore(inst, set, s)
    }

    @Test func mappedGenerationsAreWrittenDirect() throws { try Self.run(compress: nil) }

    @Test func compressedGenerationsGoThroughThePageCache() throws { try Self.run(compress: 3) }

    /// An owner's generations arrive in page-aligned buffers: written direct too.
    @Test func generationsFromAnOwnerAreWrittenDirect() throws { try Self.run(compress: nil, throughOwner: true) }
}
