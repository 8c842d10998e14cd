import Testing
@testable import JetStore

/// A fresh in-memory file system with an instance at /inst and a database "db".
func makeMemoryInstance(_ tune: (inout InstanceParameters) -> Void = { _ in }, databases: [String] = ["db"]) throws -> MemoryFileSystem {
    let fs = MemoryFileSystem()
    fs.makeDirectories("/inst")
    var p = InstanceParameters()
    p.pageSize = 4096
    p.logFileSize = 64 * 1024
    p.cacheSize = 64 * 4096
    p.checkpointDepth = 256 * 1024
    tune(&p)
    try Instance.create(at: "/inst", parameters: p, fs: fs)
    let inst = try Instance.open(at: "/inst", fs: fs, owner: "test")
    for d in databases { try inst.createDatabase(d) }
    try inst.close()
    return fs
}

/// A crash that loses every unsynced write while `inst` (at /inst) is open: reopened, the
/// instance replays its log and holds exactly `model`.
/// Returns what recovery reported.
@discardableResult
func expectCrashRecovers(_ fs: MemoryFileSystem, _ inst: Instance, to model: [[UInt8]: [UInt8]]) throws -> Instance.RecoveryReport {
    fs.crash(afterOperations: 0)
    try? inst.close()
    fs.reboot(.dropUnsynced)
    let again = try Instance.open(at: "/inst", fs: fs, owner: "t")
    #expect(again.recoveryReport.transactionsReplayed > 0)
    #expect(try allRecords(again) == model)
    try again.close()
    return again.recoveryReport
}

func key(_ i: Int) -> [UInt8] { Array("key\(String(format: "%08d", i))".utf8) }

func allRecords(_ inst: Instance, _ db: String = "db") throws -> [[UInt8]: [UInt8]] {
    var out: [[UInt8]: [UInt8]] = [:]
    var last: [UInt8]?
    try inst.scan(db) { k, v in
        if let l = last { #expect(Node.compare(l.withUnsafeBytes { $0 }, k.withUnsafeBytes { $0 }) < 0) }
        last = k
        out[k] = v
        return true
    }
    return out
}

/// Deterministic value bytes for a key and a version.
func value(_ i: Int, _ version: Int, size: Int) -> [UInt8] {
    var g = SplitMix64(seed: UInt64(i) &* 1_000_003 &+ UInt64(version))
    return (0..<size).map { _ in UInt8(truncatingIfNeeded: g.next()) }
}

/// Temporary directory on the real file system, removed by the caller.
func temporaryDirectory(_ tag: String = "jet") -> String {
    var template = Array("/tmp/\(tag)-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
