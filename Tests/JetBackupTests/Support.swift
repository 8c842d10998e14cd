import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// A real instance in a temporary directory, removed at deinit.
final class Scratch {
    let root: String
    let fs = PosixFileSystem()
    init(_ tag: String = "jb") {
        var template = Array("/tmp/\(tag)-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { remove() }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func path(_ name: String) -> String { root + "/" + name }

    func makeInstance(_ name: String = "inst", _ tune: (inout InstanceParameters) -> Void = { _ in }) throws -> String {
        var p = InstanceParameters()
        p.pageSize = 4096
        p.logFileSize = 64 * 1024
        p.checkpointDepth = 512 * 1024
        tune(&p)
        try Instance.create(at: path(name), parameters: p)
        return path(name)
    }

    func mkdir(_ name: String) -> String {
        try? FileManager.default.createDirectory(atPath: path(name), withIntermediateDirectories: true)
        return path(name)
    }

    func list(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }
}

/// These tests drop instances without closing them to stand for a crash; an instance that
/// served its control socket would stay alive in this process, so they do not serve.
func open(_ p: String) throws -> Instance { try Instance.open(at: p, owner: "test", serveControl: false) }

/// Loads `n` records of the generator into database `db` (created if missing).
func load(_ inst: Instance, _ db: String = "app", from: Int = 0, count: Int, seed: UInt64 = 1, size: Int = 120) throws {
    if !inst.databaseNames.contains(db) { try inst.createDatabase(db) }
    let g = LoadGenerator(seed: seed, valueSize: size, updateRatio: 0.2)
    var i = from
    while i < from + count {
        let n = min(200, from + count - i)
        try inst.commit((i..<(i + n)).map { .put(database: db, key: g.key($0), value: g.value($0)) })
        i += n
    }
}

func digest(_ p: String) throws -> String {
    let inst = try open(p)
    defer { try? inst.close() }
    return try ContentDigest.of(inst).hex
}

func digest(_ inst: Instance) throws -> String { try ContentDigest.of(inst).hex }

func backup(_ inst: Instance, _ dir: String?, incremental: Bool = false, atomic: Bool = false, level: Int? = nil) throws -> BackupSummary {
    var o = BackupOptions(directory: dir)
    o.incremental = incremental
    o.atomic = atomic
    o.compressionLevel = level
    return try JetBackupInstance.run(inst, o)
}

func restore(_ dir: String, _ target: String) throws -> RestoreInstance.Summary {
    try RestoreInstance().restore(from: dir, to: target, owner: "test")
}

func expectJetError(_ code: JetError.Code, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(code.name), got success", sourceLocation: sourceLocation)
    } catch let e as JetError {
        #expect(e.code == code, "expected \(code.name), got \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code.name), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Snapshot of a directory tree: relative path → bytes (to prove "left as it was").
func snapshotTree(_ dir: String) -> [String: Data] {
    var out: [String: Data] = [:]
    guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
    while let rel = e.nextObject() as? String {
        var isDir: ObjCBool = false
        let p = dir + "/" + rel
        if FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue {
            out[rel] = FileManager.default.contents(atPath: p)
        } else {
            out[rel + "/"] = Data()
        }
    }
    return out
}

func headers(_ p: String) throws -> [Inspection.DatabaseInfo] { try Inspection.databases(p, fs: PosixFileSystem()) }

func generations(_ p: String) -> [UInt32] {
    ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).compactMap { FileNames.parseArchivedLog($0) }.sorted()
}

func flipByte(_ path: String, at offset: Int, mask: UInt8 = 0x40) {
    let h = FileHandle(forUpdatingAtPath: path)!
    try! h.seek(toOffset: UInt64(offset))
    let d = h.readData(ofLength: 1)
    precondition(!d.isEmpty, "flipByte: offset \(offset) is past the end of \(path)")
    let b = d[d.startIndex]
    try! h.seek(toOffset: UInt64(offset))
    h.write(Data([b ^ mask]))
    try! h.close()
}
