import Foundation
import JetBackup
import JetStore

/// One libFuzzer entry point; JETFUZZ_TARGET picks the decoder under attack:
/// log (a log generation), page (page verify + B+tree node walk via a database file),
/// header (database header), checkpoint, manifest, size (CLI size parser), doublewrite (the
/// doublewrite file an open scans and repairs from before redo), control (a message of the
/// owner's control socket; a decoded one must encode back to the same bytes).
/// Each must reject bad input with an error, never trap or touch memory it does not own.
let target = ProcessInfo.processInfo.environment["JETFUZZ_TARGET"] ?? "log"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    switch target {
    case "log":
        // A generation: header, records, transactions decoded.
        if let g = try? LogReader.parse(bytes, path: "fuzz.log") {
            _ = g.hasValidRecord(after: LogFormat.headerSize)
            for f in g.fragments {
                _ = try? g.bytes.withUnsafeBytes { p in
                    try LogTransaction.decode(UnsafeRawBufferPointer(rebasing: p[f.payload]), where: "fuzz")
                }
            }
        }
        // And the payload decoder alone, on raw input.
        _ = try? bytes.withUnsafeBytes { try LogTransaction.decode($0, where: "fuzz") }
    case "page":
        for ps in PageFormat.supportedPageSizes where bytes.count >= ps {
            bytes.withUnsafeBytes { p in
                let page = UnsafeRawBufferPointer(rebasing: p[0..<ps])
                _ = PageFormat.verify(page, pgno: 7)
            }
        }
    case "tree":
        // A database whose root page is the input (sealed, so it passes its checksum): the
        // B+tree must walk it, or refuse it with JET_errDatabaseCorrupted, never trap.
        guard let (fs, inst) = scratchInstance() else { return 0 }
        _ = try? inst.createDatabase("d")
        try? inst.close()
        var file = fs.contents("/i/d.edb") ?? []
        guard file.count >= 3 * 4096 else { return 0 }
        var page = [UInt8](repeating: 0, count: 4096)
        for k in 0..<min(4096, bytes.count) { page[k] = bytes[k] }
        page.withUnsafeMutableBytes { PageFormat.seal($0, pgno: 2) }
        file.replaceSubrange((2 * 4096)..<(3 * 4096), with: page)
        fs.setContents("/i/d.edb", file)
        if let again = try? Instance.open(at: "/i", fs: fs, owner: "fuzz") {
            _ = try? again.scan("d", limit: 1000) { _, _ in true }
            _ = try? again.get("d", Array("k".utf8))
            _ = try? again.commit([.put(database: "d", key: Array("fuzz".utf8), value: Array(bytes.prefix(100)))])
            try? again.close()
        }
    case "header":
        bytes.withUnsafeBytes { p in
            for ps in PageFormat.supportedPageSizes where p.count >= ps {
                _ = DatabaseHeader.decode(UnsafeRawBufferPointer(rebasing: p[0..<ps]))
            }
            if p.count >= DatabaseHeader.encodedEnd { _ = DatabaseHeader.decode(p) }
        }
    case "checkpoint":
        bytes.withUnsafeBytes { _ = Checkpoint.decodeCopy($0) }
    case "doublewrite":
        // A hostile edb.dw: its batches are ignored or its copies refused, never a trap, and
        // the instance still opens and reads.
        bytes.withUnsafeBytes { p in
            for ps in PageFormat.supportedPageSizes {
                _ = DoublewriteFormat.Header.length(p, pageSize: ps)
                _ = DoublewriteFormat.Header.decode(p, pageSize: ps)
            }
        }
        guard let (fs, inst) = scratchInstance() else { return 0 }
        _ = try? inst.createDatabase("d")
        _ = try? inst.commit([.put(database: "d", key: Array("k".utf8), value: Array("v".utf8))])
        try? inst.close()
        fs.setContents("/i/edb.dw", bytes)
        if let again = try? Instance.open(at: "/i", fs: fs, owner: "fuzz") {
            _ = try? again.get("d", Array("k".utf8))
            try? again.close()
        }
    case "manifest":
        if let m = try? BackupManifest.decode(bytes, path: "MANIFEST.json") {
            _ = m.sha256sums()
            _ = try? m.encoded()
        }
    case "size":
        _ = try? InstanceParameters.parseSize(String(decoding: bytes, as: UTF8.self))
    case "control":
        if let m = try? ControlMessage.decode(bytes) {
            let again = Array(m.encode().dropFirst(4))
            if (try? ControlMessage.decode(again)) != m { fatalError("a decoded control message does not survive encoding") }
        }
    default:
        fatalError("unknown JETFUZZ_TARGET \(target)")
    }
    return 0
}

// SwiftPM links an executable's `main` to `<target>_main`; hand control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("jetfuzz_main")
func jetfuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var c = argc
    var v: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&c, &v, { data, size in fuzz(data, size) })
}

/// A fresh instance of 4 KiB pages in memory, open, for the targets that feed it a file.
func scratchInstance() -> (MemoryFileSystem, Instance)? {
    let fs = MemoryFileSystem()
    fs.makeDirectories("/i")
    var p = InstanceParameters()
    p.pageSize = 4096
    p.logFileSize = 64 * 1024
    guard (try? Instance.create(at: "/i", parameters: p, fs: fs)) != nil,
          let inst = try? Instance.open(at: "/i", fs: fs, owner: "fuzz") else { return nil }
    return (fs, inst)
}
