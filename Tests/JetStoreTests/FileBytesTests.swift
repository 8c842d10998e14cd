import Foundation
import Testing
@testable import JetStore

/// A backup's copy of log generations maps them (`PosixFileSystem.readWhole`) and checks the
/// mapping with `LogReader.scan`: the same bytes as a read, and the same records, end and
/// commit times as `parse` finds in an array — for whole generations and damaged ones.
@Suite struct FileBytesTests {
    /// An instance on the real file system with a few finished generations.
    static func instanceWithGenerations() throws -> (dir: String, generations: [String]) {
        let dir = temporaryDirectory("filebytes")
        var p = InstanceParameters()
        p.pageSize = 4096
        p.logFileSize = 64 * 1024
        p.cacheSize = 64 * 4096
        try Instance.create(at: dir, parameters: p, fs: PosixFileSystem())
        let inst = try Instance.open(at: dir, fs: PosixFileSystem(), owner: "test")
        try inst.createDatabase("db")
        for i in 0..<600 { try inst.commit([.put(database: "db", key: key(i), value: value(i, 0, size: 300))]) }
        _ = try inst.rollLog()
        let names = try inst.archivedGenerationNumbers().map { inst.generationPath($0) }
        try inst.close()
        return (dir, names)
    }

    @Test func aMappedGenerationScansAsItsReadCopyParses() throws {
        let (dir, paths) = try Self.instanceWithGenerations()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(paths.count >= 3)
        let fs = PosixFileSystem()
        var fromArray = LogReader.CommitScanner()
        var fromMapping = LogReader.CommitScanner()
        var commits = 0
        for path in paths {
            let read = try fs.readAll(path)
            let mapped = try fs.readWhole(path)
            #expect(mapped.count == read.count)
            #expect(mapped.array == read)
            let g = try LogReader.parse(read, path: path, unmask: false)
            let s = try mapped.withUnsafeBytes { try LogReader.scan($0, path: path) }
            #expect(s.header.generation == g.header.generation)
            #expect(s.fragments.map(\.offset) == g.fragments.map(\.offset))
            #expect(s.fragments.map(\.payload) == g.fragments.map(\.payload))
            #expect(s.end == g.end)
            let a = try fromArray.feed(g)
            let b = try mapped.withUnsafeBytes { try fromMapping.feed(s, bytes: $0, masked: true) }
            #expect(a == b)
            commits += b.count
        }
        #expect(commits > 500)
        // An empty file maps to nothing (mmap refuses length 0).
        let empty = dir + "/empty"
        FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(try fs.readWhole(empty).count == 0)
    }

    @Test func aDamagedMappedGenerationEndsWhereTheParseEnds() throws {
        let (dir, paths) = try Self.instanceWithGenerations()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fs = PosixFileSystem()
        var bytes = try fs.readAll(paths[1])
        let g = try LogReader.parse(bytes, path: paths[1], unmask: false)
        let victim = g.fragments[g.fragments.count / 2]
        bytes[victim.payload.lowerBound] ^= 0x40
        let damaged = dir + "/damaged.log"
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let s = try fs.readWhole(damaged).withUnsafeBytes { try LogReader.scan($0, path: damaged) }
        #expect(s.end == (try LogReader.parse(bytes, path: damaged, unmask: false)).end)
        guard case .bad(let o, _, let torn) = s.end else { Issue.record("damage not found: \(s.end)"); return }
        #expect(o == victim.offset && !torn)
        #expect(LogChainFault.check(s, expected: g.header.generation, signature: g.header.signature, previousCreation: nil)
            == .damaged(offset: o, reason: "a record fails its checksum"))
        // Cut short: the size no longer matches the header.
        try Data(bytes[0..<(bytes.count / 2)]).write(to: URL(fileURLWithPath: damaged))
        #expect(throws: JetError.self) { try fs.readWhole(damaged).withUnsafeBytes { try LogReader.scan($0, path: damaged) } }
    }
}
