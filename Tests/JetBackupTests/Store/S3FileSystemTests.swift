import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The file system over a bucket (SeaweedFS): prefixes as directories, uploads as files written
/// front to back, rename of small files only, locks by conditional create, and a store that does
/// not answer reported as such rather than as missing files.
@Suite(.serialized, .enabled(if: SeaweedFS.available)) struct S3FileSystemTests {
    static func fs() throws -> (S3FileSystem, String) {
        let w = try SeaweedFS.shared()
        return (S3FileSystem(client: w.client()), "s3://\(w.bucket)/fs-\(UUID().uuidString.prefix(8).lowercased())")
    }

    @Test func writesOutOfOrderBecomeOneObjectOnSyncAndNoneWhenClosedBefore() throws {
        let (fs, root) = try Self.fs()
        let plain = EncryptedFileSystemTests.bytes(70_000)
        let f = try fs.open(root + "/a/x.edb", .createNewDirect)
        try EncryptedFileSystemTests.writeOutOfOrder(f, plain, piece: 4096)
        #expect(!fs.exists(root + "/a/x.edb"))
        try f.sync()
        f.close()
        #expect(try fs.readAll(root + "/a/x.edb") == plain)
        let abandoned = try fs.open(root + "/a/y", .createNew)
        try [1, 2, 3].withUnsafeBytes { try abandoned.write(at: 0, $0) }
        abandoned.close()
        #expect(!fs.exists(root + "/a/y"))
        // A write behind what was written is refused (an object is written once, front to back).
        let g = try fs.open(root + "/a/z", .createNew)
        try [1, 2, 3].withUnsafeBytes { try g.write(at: 0, $0) }
        #expect(throws: JetError.self) { try [9].withUnsafeBytes { try g.write(at: 1, $0) } }
        g.close()
    }

    @Test func prefixesAreDirectoriesAndAnEmptiedOneIsNoEntry() throws {
        let (fs, root) = try Self.fs()
        #expect(fs.isDirectory(root) && !fs.exists(root))
        try fs.writeAtomically(root + "/set/MANIFEST.json", [1])
        try fs.writeAtomically(root + "/set/sub/f", [2])
        try fs.writeAtomically(root + "/top", [3])
        #expect(try fs.list(root) == ["set", "top"])
        #expect(try fs.list(root + "/set") == ["MANIFEST.json", "sub"])
        #expect(fs.exists(root + "/set") && fs.isDirectory(root + "/set") && !fs.isDirectory(root + "/top"))
        #expect(throws: JetError.self) { try fs.removeDirectory(root + "/set") }
        #expect(throws: JetError.self) { try fs.rename(root + "/set", root + "/other") }
        try fs.rename(root + "/top", root + "/moved")
        #expect(try fs.readAll(root + "/moved") == [3] && !fs.exists(root + "/top"))
        try fs.removeTree(root + "/set")
        #expect(try fs.list(root) == ["moved"])
        // Objects deleted behind the file system's back (another run, a killed expire): SeaweedFS
        // keeps their folder and lists it, but a prefix without objects is no entry.
        try fs.client.put(try fs.key(root + "/gone/a"), [1])
        try fs.client.delete(try fs.key(root + "/gone/a"))
        #expect(try fs.list(root) == ["moved"])
        try fs.throwIfQueryFailed()
    }

    /// A set of more than 1,000 files (S3 answers 1,000 keys a page) is listed whole, and its
    /// sub-prefixes with it.
    @Test func aDirectoryOfMoreThanAThousandObjectsIsListedAcrossPages() throws {
        let (fs, root) = try Self.fs()
        let c = fs.client
        let names = (0..<1_010).map { String(format: "edb%08d.log", $0) }
        let base = try fs.key(root)
        DispatchQueue.concurrentPerform(iterations: 8) { w in
            for i in stride(from: w, to: names.count, by: 8) { try? c.put(base + "/set/" + names[i], [UInt8(i & 255)]) }
        }
        try c.put(base + "/set/sub/x", [1])
        #expect(try fs.list(root + "/set") == (names + ["sub"]).sorted())
        #expect(try fs.list(root) == ["set"])
    }

    /// After a directory is listed, questions about its files cost no request, and a file
    /// written or removed through the file system is seen at once.
    @Test func aListedDirectoryAnswersWithoutRequestsUntilItChanges() throws {
        let (fs, root) = try Self.fs()
        let dir = root + "/set"
        for i in 0..<20 { try fs.writeAtomically(dir + "/f\(i)", [UInt8](repeating: 1, count: i)) }
        _ = try fs.list(dir)
        let before = fs.client.requestsSent
        for i in 0..<20 {
            #expect(fs.exists(dir + "/f\(i)") && !fs.isDirectory(dir + "/f\(i)"))
            let f = try fs.open(dir + "/f\(i)", .readOnly)
            #expect(try f.size() == Int64(i))
            f.close()
        }
        #expect(!fs.exists(dir + "/missing"))
        #expect(fs.client.requestsSent == before)
        try fs.remove(dir + "/f3")
        #expect(!fs.exists(dir + "/f3"))
        try fs.writeAtomically(dir + "/new", [1, 2])
        #expect(fs.exists(dir + "/new"))
        #expect(try fs.readAll(dir + "/new") == [1, 2])
        #expect(try fs.list(dir).count == 20)
        let l = try fs.lock(dir + "/lock", owner: "me")
        #expect(fs.exists(dir + "/lock"))
        l.release()
        #expect(!fs.exists(dir + "/lock"))
    }

    @Test func aLockIsExclusiveReleasedAndTakenOverOnlyFromADeadProcessOfThisHost() throws {
        let (fs, root) = try Self.fs()
        let l = try fs.lock(root + "/lock", owner: "first")
        #expect(throws: JetError.self) { _ = try fs.lock(root + "/lock", owner: "second") }
        do { _ = try fs.lock(root + "/lock", owner: "second") } catch let e as JetError {
            #expect(e.code == .fileAccessDenied && e.message.contains("first"))
        }
        l.release()
        #expect(!fs.exists(root + "/lock"))
        let c = fs.client
        let key = try fs.key(root + "/lock")
        // A record of this host whose process is gone (pid_max is below 2^22) is taken over; one of
        // another host, or of a live process, is not.
        try c.put(key, Array("pid 4194303 on host \(S3Lock.hostName) since x: gone [run a]".utf8))
        let taken = try fs.lock(root + "/lock", owner: "third")
        taken.release()
        for record in ["pid 4194303 on host other-host-\(UUID().uuidString.prefix(4)) since x: y [run b]",
                       "pid \(getpid()) on host \(S3Lock.hostName) since x: alive [run c]"] {
            try c.put(key, Array(record.utf8))
            #expect(throws: JetError.self, "\(record)") { _ = try fs.lock(root + "/lock", owner: "fourth") }
        }
        try c.delete(key)
    }

    @Test func aStoreThatDoesNotAnswerIsAnErrorNotAMissingFile() throws {
        var c = try SeaweedFS.shared().config()
        c.endpoint = "http://127.0.0.1:\(try SeaweedFS.freePort())"
        c.attempts = 1
        let fs = S3FileSystem(client: S3Client(config: c, bucket: "jbtest"))
        #expect(!fs.exists("s3://jbtest/x/MANIFEST.json"))
        #expect(throws: JetError.self) { try fs.throwIfQueryFailed() }
        try fs.throwIfQueryFailed()
        #expect(throws: JetError.self) { _ = try Repository.open("s3://jbtest/x", fs: fs) }
        do { _ = try Repository.open("s3://jbtest/x", fs: fs) } catch let e as JetError { #expect(e.code == .diskIO, "\(e)") }
    }
}
