import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// How often a restore reads each file: every log generation of the set once (read,
/// decompressed and checked once, then replayed), and never its copy in TARGET.
@Suite struct RestoreReadsTests {
    /// The real file system, counting per path the opens for reading and the bytes read.
    final class CountingFileSystem: ForwardingFileSystem, @unchecked Sendable {
        private let lock = NSLock()
        private var opens: [String: Int] = [:]
        private var bytes: [String: Int64] = [:]

        init() { super.init(PosixFileSystem()) }

        func opensForReading(_ path: String) -> Int { lock.withLock { opens[path, default: 0] } }
        func bytesRead(_ path: String) -> Int64 { lock.withLock { bytes[path, default: 0] } }
        func reset() { lock.withLock { opens = [:]; bytes = [:] } }
        fileprivate func counted(_ path: String, _ n: Int) { lock.withLock { bytes[path, default: 0] += Int64(n) } }

        override func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
            let f = try inner.open(path, mode)
            if mode == .readOnly { lock.withLock { opens[path, default: 0] += 1 } }
            return CountingFile(f, fs: self)
        }
    }

    final class CountingFile: StorageFile, @unchecked Sendable {
        let file: any StorageFile
        let fs: CountingFileSystem
        init(_ file: any StorageFile, fs: CountingFileSystem) { self.file = file; self.fs = fs }
        var path: String { file.path }
        func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let n = try file.read(at: offset, into: buffer)
            fs.counted(path, n)
            return n
        }
        func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws { try file.write(at: offset, bytes) }
        func write(at offset: Int64, gathering parts: [UnsafeRawBufferPointer]) throws { try file.write(at: offset, gathering: parts) }
        func sync() throws { try file.sync() }
        func size() throws -> Int64 { try file.size() }
        func truncate(to size: Int64) throws { try file.truncate(to: size) }
        func close() { file.close() }
        func startWriteback(offset: Int64, length: Int) { file.startWriteback(offset: offset, length: length) }
        func willNeed(offset: Int64, length: Int) { file.willNeed(offset: offset, length: length) }
    }

    /// Restore used to read, decompress and check every log twice: once to verify and write
    /// it into TARGET, and again when recovery read TARGET's copy. Now each generation of the
    /// set is opened and read once, in full, and no byte of a log in TARGET is read; `verify`
    /// alone reads each once too. The restored content is the set's.
    @Test func restoreReadsEachLogGenerationOnce() throws {
        let s = Scratch()
        let (dir, truth) = try SetReadingTests.makeSet(s)
        let m = try SetVerifier().manifest(in: dir).1
        let logs = m.files.filter { $0.kind == .log }
        #expect(logs.count >= 3 && logs.contains { $0.rawSize != nil }, "the set should hold several logs, some compressed")
        let fs = CountingFileSystem()
        let target = s.path("t")
        let r = try RestoreInstance(fs: fs).restore(from: dir, to: target, owner: "test")
        #expect(r.generations == logs.count)
        for f in logs {
            let p = dir + "/" + f.name
            #expect(fs.opensForReading(p) == 1, "\(f.name) was opened \(fs.opensForReading(p)) times for reading")
            #expect(fs.bytesRead(p) == f.size, "\(f.name): \(fs.bytesRead(p)) bytes read, the file has \(f.size)")
            let copy = target + "/" + FileNames.archivedLog(f.generation!)
            #expect(FileManager.default.fileExists(atPath: copy))
            // (It is opened once, to be fsynced with the others at the end: not read.)
            #expect(fs.bytesRead(copy) == 0, "TARGET's \(FileNames.archivedLog(f.generation!)) was read back")
        }
        #expect(try digest(target) == truth)
        fs.reset()
        _ = try SetVerifier(fs: fs).verify(dir)
        for f in logs {
            let p = dir + "/" + f.name
            #expect(fs.opensForReading(p) == 1 && fs.bytesRead(p) == f.size, "verify: \(f.name) opened \(fs.opensForReading(p)) times")
        }
    }

    /// TARGET's logs are written without an fsync after each and fsynced together before the
    /// restore completes: a crash right after it returns loses none of them.
    @Test func restoredLogsAreDurableWhenRestoreReturns() throws {
        let fs = MemoryFileSystem()
        fs.makeDirectories("/i"); fs.makeDirectories("/b")
        var p = InstanceParameters(); p.pageSize = 4096; p.logFileSize = 64 * 1024
        try Instance.create(at: "/i", parameters: p, fs: fs)
        let inst = try Instance.open(at: "/i", fs: fs, owner: "t")
        try load(inst, count: 300)
        var o = BackupOptions(directory: "/b"); o.fs = fs
        _ = try JetBackupInstance.run(inst, o)
        try load(inst, from: 300, count: 1500)
        o.incremental = true
        o.compressionLevel = 1
        _ = try JetBackupInstance.run(inst, o)
        let truth = try digest(inst)
        try inst.close()
        let m = try SetVerifier(fs: fs).manifest(in: "/b").1
        let logs = m.files.filter { $0.kind == .log }
        #expect(logs.count >= 4)
        _ = try RestoreInstance(fs: fs).restore(from: "/b", to: "/t", owner: "t")
        fs.crash(afterOperations: 0)
        fs.reboot(.dropUnsynced)
        for f in logs {
            let stored = try fs.readAll("/b/" + f.name)
            let raw = try f.rawSize.map { try Zstd.decompress(stored, maxSize: Int($0), file: f.name) } ?? stored
            #expect(try fs.readAll("/t/" + FileNames.archivedLog(f.generation!)) == raw, "\(f.name) was not durable in TARGET")
        }
        let restored = try Instance.open(at: "/t", fs: fs, owner: "t")
        #expect(try ContentDigest.of(restored).hex == truth)
        try restored.close()
    }
}
