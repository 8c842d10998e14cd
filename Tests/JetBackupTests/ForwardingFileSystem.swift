import Foundation
import JetStore

/// A file system that hands every call to `inner`: tests subclass it and override `open`
/// to count what is read or to provoke a race at one call.
class ForwardingFileSystem: FileSystem, @unchecked Sendable {
    let inner: any FileSystem
    init(_ inner: any FileSystem) { self.inner = inner }

    func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile { try inner.open(path, mode) }
    func exists(_ path: String) -> Bool { inner.exists(path) }
    func isDirectory(_ path: String) -> Bool { inner.isDirectory(path) }
    func isSymlink(_ path: String) -> Bool { inner.isSymlink(path) }
    func list(_ directory: String) throws -> [String] { try inner.list(directory) }
    func remove(_ path: String) throws { try inner.remove(path) }
    func removeDirectory(_ path: String) throws { try inner.removeDirectory(path) }
    func rename(_ from: String, _ to: String) throws { try inner.rename(from, to) }
    func createDirectory(_ path: String) throws { try inner.createDirectory(path) }
    func syncDirectory(_ path: String) throws { try inner.syncDirectory(path) }
    func lock(_ path: String, owner: String) throws -> any FileLock { try inner.lock(path, owner: owner) }
    func canonicalPath(_ path: String) -> String { inner.canonicalPath(path) }
    func isWritableDirectory(_ path: String) -> Bool { inner.isWritableDirectory(path) }
}

/// Records every open of a file in one directory (name, mode, the file handed out), in order.
final class DirectoryOpens: ForwardingFileSystem, @unchecked Sendable {
    let dir: String
    private let lock = NSLock()
    private var opened: [(name: String, mode: OpenMode, file: any StorageFile)] = []
    init(dir: String) {
        self.dir = dir
        super.init(PosixFileSystem())
    }

    var opens: [(name: String, mode: OpenMode, file: any StorageFile)] { lock.withLock { opened } }
    func reset() { lock.withLock { opened = [] } }

    override func open(_ path: String, _ mode: OpenMode) throws -> any StorageFile {
        let f = try inner.open(path, mode)
        if FilePaths.directory(of: path) == dir { lock.withLock { opened.append((FilePaths.lastComponent(path), mode, f)) } }
        return f
    }
}
