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
