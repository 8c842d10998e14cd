import Foundation
import Testing
@testable import JetStore

/// The file system seam's owner lock, on both file systems: a second locker is refused
/// naming the holder, and a lock file removed while held frees its path (a backup removes
/// its destination's lock before releasing it), without the old holder's release freeing
/// the new one.
@Suite struct FileLockTests {
    static func systems() -> [(String, any FileSystem, String)] {
        var t = Array("/tmp/jlock-XXXXXX".utf8CString)
        let dir = t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        let mem = MemoryFileSystem()
        mem.makeDirectories("/d")
        return [("posix", PosixFileSystem(), dir), ("memory", mem, "/d")]
    }

    @Test func secondLockerIsRefusedAndRemovalFreesThePath() throws {
        for (name, fs, dir) in Self.systems() {
            defer { if name == "posix" { try? FileManager.default.removeItem(atPath: dir) } }
            let p = dir + "/lockfile"
            let first = try fs.lock(p, owner: "first holder")
            do {
                _ = try fs.lock(p, owner: "second")
                Issue.record("\(name): a second lock of a held file succeeded")
            } catch let e as JetError {
                #expect(e.code == .fileAccessDenied && e.message.contains("first holder"), "\(name): \(e)")
            }
            // Removed while held: the path is free, and locking it locks a new file.
            try fs.remove(p)
            let second = try fs.lock(p, owner: "second holder")
            first.release()
            #expect(throws: JetError.self, "\(name): the first holder's release freed the second's lock") {
                _ = try fs.lock(p, owner: "third")
            }
            second.release()
            let third = try fs.lock(p, owner: "third")
            third.release()
        }
    }

    @Test func canonicalPathResolvesLinksAndMissingTails() throws {
        let (_, fs, dir) = Self.systems()[0]
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/real/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/real")
        let real = fs.canonicalPath(dir + "/real")
        #expect(fs.canonicalPath(dir + "/link/sub") == real + "/sub")
        #expect(fs.canonicalPath(dir + "/link/missing/deeper") == real + "/missing/deeper")
        #expect(fs.canonicalPath(dir + "/link/./sub/../sub") == real + "/sub")
        #expect(MemoryFileSystem().canonicalPath("/a/./b/../c//d") == "/a/c/d")
        #expect(FilePaths.isSameOrBelow("/a/b", "/a") && FilePaths.isSameOrBelow("/a", "/a") && !FilePaths.isSameOrBelow("/ab", "/a"))
    }
}
