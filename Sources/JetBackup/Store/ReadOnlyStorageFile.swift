import JetStore

/// A file of a backup store opened for reading (an S3 object, a decrypted view): writes and
/// truncation are refused naming the file, and there is nothing to sync.
protocol ReadOnlyStorageFile: StorageFile {}

extension ReadOnlyStorageFile {
    func write(at offset: Int64, _ bytes: UnsafeRawBufferPointer) throws {
        throw JetError(.invalidParameter, "\(path) was opened for reading")
    }
    func sync() throws {}
    func truncate(to size: Int64) throws { throw JetError(.invalidParameter, "\(path) was opened for reading") }
}
