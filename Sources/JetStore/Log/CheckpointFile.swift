/// Reads and writes `edb.chk`: copy A, fsync, copy B, fsync. At every instant one copy is
/// whole; the valid copy with the higher sequence wins, and a damaged copy is rewritten.
enum CheckpointFile {
    static func read(fs: any FileSystem, path: String) throws -> (Checkpoint, damagedCopies: Int) {
        guard fs.exists(path) else {
            throw JetError(.checkpointCorrupt, "the checkpoint file \(path) is missing; the instance cannot know where crash recovery starts: "
                + "restore it from a backup")
        }
        let bytes = try fs.readAll(path)
        let copies: [Checkpoint?] = bytes.withUnsafeBytes { p in
            (0..<2).map { i in
                let lo = i * Checkpoint.copySize
                guard lo + Checkpoint.copySize <= p.count else { return nil }
                return Checkpoint.decodeCopy(UnsafeRawBufferPointer(rebasing: p[lo..<(lo + Checkpoint.copySize)]))
            }
        }
        let valid = copies.compactMap { $0 }
        guard let best = valid.max(by: { $0.sequence < $1.sequence }) else {
            throw JetError(.checkpointCorrupt, "both copies of the checkpoint \(path) are damaged; restore the instance from a backup")
        }
        return (best, 2 - valid.count)
    }

    static func write(fs: any FileSystem, path: String, _ cp: Checkpoint) throws {
        let copy = cp.encodeCopy()
        let f: any StorageFile
        if fs.exists(path) {
            f = try fs.open(path, .readWrite)
        } else {
            f = try fs.open(path, .createNew)
            try fs.syncDirectory(FilePaths.directory(of: path))
        }
        defer { f.close() }
        try copy.withUnsafeBytes { try f.write(at: 0, $0) }
        try f.sync()
        try copy.withUnsafeBytes { try f.write(at: Int64(Checkpoint.copySize), $0) }
        try f.sync()
    }
}
