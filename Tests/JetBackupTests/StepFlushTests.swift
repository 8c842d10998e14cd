import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The database image is made durable in steps while it is written (`Flusher`, used by the
/// image's `ChunkPipeline`): the fsyncs happen before the file is finished, and a step fsync
/// that fails reaches the copy (after a failed fsync the kernel may call the next one a
/// success with the data lost, so it must never be swallowed).
@Suite struct StepFlushTests {
    /// Waits (up to 20 s: a liveness check, not a timing one) until `done` holds.
    static func eventually(_ done: () throws -> Bool) rethrows -> Bool {
        for _ in 0..<2000 {
            if try done() { return true }
            usleep(10_000)
        }
        return false
    }

    @Test func theFileIsFsyncedWhileItIsStillBeingWritten() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/b")
        let file = try fs.open("/b/image", .createNew)
        defer { file.close() }
        let flusher = Flusher(file: file, every: 8192)
        let chunk = [UInt8](repeating: 7, count: 4096)
        let before = fs.syncCount
        try chunk.withUnsafeBytes { try file.write(at: 0, $0) }
        flusher.wrote(4096)
        // Less than a step written: no fsync yet.
        usleep(50_000)
        #expect(fs.syncCount == before)
        try chunk.withUnsafeBytes { try file.write(at: 4096, $0) }
        flusher.wrote(4096)
        #expect(Self.eventually { fs.syncCount > before }, "no fsync while the file was being written")
        #expect(flusher.stop() == nil)
        #expect(flusher.stop() == nil, "a second stop returns at once")
    }

    @Test func aFailedStepFsyncStopsTheImagesPipeline() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/b")
        let file = try fs.open("/b/image", .createNew)
        defer { file.close() }
        fs.failPersistently(afterOperations: 0, with: JetError(.diskIO, "EIO"), only: [.sync])
        let pipeline = ChunkPipeline(file: file, slots: 2, writers: 2, flushEvery: 4096)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 1)
        pipeline.submit(UnsafeRawBufferPointer(buffer), at: 0, slot: 0)
        let failed = Self.eventually {
            do { try pipeline.wait(slot: 0); return false } catch { return (error as? JetError)?.code == .diskIO }
        }
        #expect(failed, "the step fsync's EIO never reached the writer")
        #expect(throws: JetError.self) { _ = try pipeline.finish() }
        pipeline.drain()
    }

    @Test func aCopyWhoseFsyncsFailThrowsAndARunLeavesNoSet() throws {
        let fs = try BackupFaultTests.base()
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        let slotsBefore = try BackupFaultTests.slots(fs), gensBefore = BackupFaultTests.gens(fs)
        let session = try inst.beginBackup(.full)
        let db = session.databases[0]
        fs.failPersistently(afterOperations: 0, with: JetError(.diskIO, "EIO"), only: [.sync])
        #expect(throws: JetError.self) {
            _ = try DatabaseCopier(fs: fs, session: session, database: db, flushBytes: 4096)
                .copy(to: "/b/" + db.fileName, backupIndex: 0) { _ in }
        }
        fs.clearFailure()
        session.abort()
        // The copier's caller removes what it wrote (FullBackup's marker and undo).
        try fs.remove("/b/" + db.fileName)
        #expect(try BackupFaultTests.slots(fs) == slotsBefore)
        // The same through a whole run: no set, headers and logs untouched, the next run works.
        fs.failPersistently(afterOperations: 0, with: JetError(.diskIO, "EIO"), only: [.sync])
        var o = BackupOptions(directory: "/b")
        o.fs = fs
        #expect(throws: JetError.self) { _ = try JetBackupInstance.run(inst, o) }
        fs.clearFailure()
        #expect(BackupSetLayout.locate("/b", fs: fs) == nil)
        try BackupFaultTests.expectUntouchedThenNextRunWorks(fs, inst, o, slotsBefore, gensBefore, "fsync EIO")
    }

    /// An encrypted stream (and an upload) becomes durable only at its end: the steps leave
    /// it alone (a step fsync there sealed the stream, and the next write failed).
    @Test func anEncryptedImageCopiedInStepsReadsBackWhole() throws {
        let fs = try BackupFaultTests.base()
        let efs = EncryptedFileSystem(base: fs, key: DataKey.generate(), chunkSize: 4096)
        // The contract itself: a step in the middle, more writes, the end.
        let f = try efs.open("/b/stream", .createNew)
        try [UInt8](repeating: 1, count: 5000).withUnsafeBytes { try f.write(at: 0, $0) }
        try f.syncWritten()
        try [UInt8](repeating: 2, count: 3000).withUnsafeBytes { try f.write(at: 5000, $0) }
        try f.sync()
        f.close()
        #expect(try efs.readAll("/b/stream") == [UInt8](repeating: 1, count: 5000) + [UInt8](repeating: 2, count: 3000))
        // A whole image of several chunks, in steps of one page.
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        defer { try? inst.close() }
        try load(inst, "big", count: 800, size: 4000)
        let session = try inst.beginBackup(.full)
        defer { session.abort() }
        let db = try #require(session.databases.first { $0.name == "big" })
        let r = try DatabaseCopier(fs: efs, session: session, database: db, flushBytes: 4096)
            .copy(to: "/b/" + db.fileName, backupIndex: 0) { _ in }
        #expect(r.file.size > 2 * Int64(DatabaseCopier.chunkBytes))
        let back = try efs.readAll("/b/" + db.fileName)
        #expect(back.count == Int(r.file.size))
        #expect(CRC32C.checksum(back) == r.file.crc32c)
    }
}
