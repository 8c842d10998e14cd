import Testing
@testable import JetBackup
import JetStore

/// The set's own formats, read back as written: `MANIFEST.json` (every field, sealed by its
/// checksum), `SHA256SUMS` and the `.jetbackup-incomplete` marker.
@Suite struct ManifestFormatTests {
    /// A manifest with every field set: a full backup and a compressed incremental, an image
    /// and uncompressed and compressed logs.
    static func sample() -> BackupManifest {
        let sig = Signature(random: 0x0123_4567_89AB_CDEF, time: 1_796_600_000_000_000)
        var full = BackupManifest.Backup(type: .full, start: "2026-12-07T08:00:00.000001Z", end: "2026-12-07T08:00:01.000002Z",
                                         startMicros: 1_796_630_400_000_001, endMicros: 1_796_630_401_000_002,
                                         genLow: 7, genHigh: 9, compression: "none")
        full.lastCommitMicros = 1_796_630_399_999_999
        var inc = BackupManifest.Backup(type: .incremental, start: "2026-12-07T09:00:00.000003Z", end: "2026-12-07T09:00:00.500004Z",
                                        startMicros: 1_796_634_000_000_003, endMicros: 1_796_634_000_500_004,
                                        genLow: 10, genHigh: 11, compression: "zstd-3")
        inc.lastCommitMicros = 1_796_634_000_400_000
        let hex = { (c: Character) in String(repeating: c, count: 64) }
        var files = [BackupManifest.File(name: "main.edb", kind: .database, generation: nil, backup: 0, size: 8192 * 40,
                                         crc32c: 0xDEAD_BEEF, sha256: hex("a"), rawSize: nil, rawCrc32c: nil)]
        for g in UInt32(7)...9 {
            files.append(.init(name: FileNames.archivedLog(g), kind: .log, generation: g, backup: 0, size: 1 << 20,
                               crc32c: g, sha256: hex("b"), rawSize: nil, rawCrc32c: nil))
        }
        for g in UInt32(10)...11 {
            files.append(.init(name: FileNames.archivedLog(g) + ".zst", kind: .log, generation: g, backup: 1, size: 40_000 + Int64(g),
                               crc32c: g * 3, sha256: hex("c"), rawSize: 1 << 20, rawCrc32c: g * 5))
        }
        return BackupManifest(logSignature: .init(sig), replayFrom: .init(generation: 7, offset: 4096), pageSize: 8192,
                              databases: [.init(name: "main", file: "main.edb", dbid: 1, signature: .init(Signature(random: 42, time: 43)),
                                                pageSize: 8192, pages: 40)],
                              chain: [full, inc], files: files)
    }

    @Test func everyFieldReadsBackAsWritten() throws {
        let m = Self.sample()
        let bytes = try m.encoded()
        let back = try BackupManifest.decode(bytes, path: "MANIFEST.json")
        var sealed = m
        sealed.checksum = try m.computedChecksum()
        #expect(back == sealed)
        #expect(back.formatVersion == BackupManifest.formatVersion && back.format == BackupManifest.formatName)
        // Written the same way every time: pretty-printed, keys sorted, a final newline.
        #expect(try back.encoded() == bytes)
        #expect(bytes.last == 0x0A)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("\"chain\" : [") && text.contains("\"lastCommitMicros\" : 1796634000400000"))
    }

    /// The checksum covers every field: one changed and the seal left as it was is refused.
    @Test func aFieldChangedUnderTheSealIsRefused() throws {
        var sealed = Self.sample()
        sealed.checksum = try sealed.computedChecksum()
        let edits: [(String, (inout BackupManifest) -> Void)] = [
            ("chain genHigh", { $0.chain[1].genHigh = 12 }),
            ("commit time", { $0.chain[0].lastCommitMicros = 1 }),
            ("file size", { $0.files[2].size += 1 }),
            ("file crc", { $0.files[0].crc32c ^= 1 }),
            ("raw crc", { $0.files[4].rawCrc32c = 0 }),
            ("sha256", { $0.files[1].sha256 = String(repeating: "d", count: 64) }),
            ("pages", { $0.databases[0].pages = 41 }),
            ("replay start", { $0.replayFrom.offset = 0 }),
            ("tool version", { $0.toolVersion = "0.0.0" }),
        ]
        for (what, edit) in edits {
            var m = sealed
            edit(&m)
            do {
                _ = try BackupManifest.decode(try m.encodedAsIs(), path: "MANIFEST.json")
                Issue.record("\(what): read although changed under the seal")
            } catch let e as JetError {
                #expect(e.code == .databaseCorrupted && e.message.contains("checksum does not match"), "\(what): \(e)")
            }
        }
    }

    /// Format 1 (no checksum) still reads; format 2 without one, and a later format, do not.
    @Test func formatsReadAndRefused() throws {
        var old = Self.sample()
        old.formatVersion = 1
        #expect(try BackupManifest.decode(try old.encodedAsIs(), path: "M") == old)
        var unsealed = Self.sample()
        unsealed.formatVersion = 2
        #expect(throws: JetError.self) { try BackupManifest.decode(try unsealed.encodedAsIs(), path: "M") }
        var future = Self.sample()
        future.formatVersion = 3
        future.checksum = try future.computedChecksum()
        do {
            _ = try BackupManifest.decode(try future.encodedAsIs(), path: "M")
            Issue.record("format 3 was read")
        } catch let e as JetError {
            #expect(e.code == .databaseCorrupted && e.message.contains("format version 3"), "\(e)")
        }
    }

    /// SHA256SUMS is what `sha256sum -c` reads: the hash, two spaces, the name, a line each.
    @Test func sumsListEveryFileInOrder() {
        let m = Self.sample()
        let lines = String(decoding: m.sha256sums(), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == m.files.count + 1 && lines.last == "")
        for (line, f) in zip(lines, m.files) { #expect(line == "\(f.sha256)  \(f.name)") }
    }

    /// The marker lists what a run will add; cleaning up after the run reads it back and
    /// removes exactly the listed files the manifest does not keep.
    @Test func markerListsWhatCleanupRemoves() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/set")
        let listed = [FileNames.archivedLog(12), FileNames.archivedLog(13) + ".zst", "main.edb"]
        try BackupSetLayout.writeMarker("/set", names: listed, fs: fs)
        #expect(fs.contents("/set/" + BackupSetLayout.marker) == Array((listed.joined(separator: "\n") + "\n").utf8))
        for name in listed + ["unlisted.edb", BackupSetLayout.manifest + ".tmp"] {
            fs.setContents("/set/" + name, [1])
        }
        try BackupSetLayout.cleanLeftovers("/set", keeping: ["main.edb"], fs: fs)
        #expect(try fs.list("/set").sorted() == ["main.edb", "unlisted.edb"])
    }
}
