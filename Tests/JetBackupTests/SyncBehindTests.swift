import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The log copy's background fsyncs: a file handed over is fsynced while the caller goes on,
/// everything handed over is durable once `finish()` returns (a crash then loses nothing),
/// and a failed fsync reaches the caller. (A failure at each of a backup's fsyncs, these
/// included, is BackupFaultTests' sweep.)
@Suite struct SyncBehindTests {
    static func written(_ fs: MemoryFileSystem, _ name: String, byte: UInt8) throws -> any StorageFile {
        let f = try fs.open("/b/" + name, .createNew)
        try [UInt8](repeating: byte, count: 8192).withUnsafeBytes { try f.write(at: 0, $0) }
        return f
    }

    @Test func filesAreFsyncedInTheBackgroundAndAllAreDurableAfterFinish() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/b")
        let syncing = SyncBehind(lanes: 2)
        defer { syncing.abandon() }
        let before = fs.syncCount
        syncing.add(try Self.written(fs, "g1", byte: 1))
        // Before finish: a lane has taken it already.
        #expect(StepFlushTests.eventually { fs.syncCount > before }, "no fsync before finish")
        for k in 2...20 { syncing.add(try Self.written(fs, "g\(k)", byte: UInt8(k))) }
        try syncing.finish()
        #expect(fs.syncCount - before == 20)
        syncing.abandon() // after finish: nothing left, returns at once
        fs.reboot(.dropUnsynced)
        for k in 1...20 {
            #expect(fs.contents("/b/g\(k)") == [UInt8](repeating: UInt8(k), count: 8192), "g\(k) lost in the crash")
        }
    }

    @Test func aFailedFsyncIsThrownByFinish() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/b")
        let syncing = SyncBehind(lanes: 2)
        defer { syncing.abandon() }
        let files = try (1...6).map { try Self.written(fs, "g\($0)", byte: 1) }
        fs.failPersistently(afterOperations: 0, with: JetError(.diskIO, "EIO"), only: [.sync])
        for f in files { syncing.add(f) }
        #expect(StepFlushTests.eventually { syncing.failure != nil })
        #expect { try syncing.finish() } throws: { ($0 as? JetError)?.code == .diskIO }
    }
}
