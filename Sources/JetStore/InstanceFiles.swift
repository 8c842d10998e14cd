/// Writes the small files that make a directory an instance; `restore` lays an instance
/// out with these before recovery replays the set's logs.
package enum InstanceFiles {
    package static func writeCheckpoint(fs: any FileSystem, directory: String, _ cp: Checkpoint) throws {
        try CheckpointFile.write(fs: fs, path: FilePaths.join(directory, FileNames.checkpoint), cp)
    }

    package static func writeParameters(fs: any FileSystem, directory: String, _ p: InstanceParameters) throws {
        try p.save(fs: fs, path: FilePaths.join(directory, FileNames.parameters))
    }
}
