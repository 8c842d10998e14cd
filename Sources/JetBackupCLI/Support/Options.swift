import ArgumentParser
import Foundation
import JetStore

/// `-i/--instance PATH`, else `$JETBACKUP_INSTANCE`, else the current directory.
struct InstanceOptions: ParsableArguments {
    @Option(name: [.customShort("i"), .customLong("instance")], help: "The instance directory.")
    var instance: String?

    var path: String {
        let p = instance ?? ProcessInfo.processInfo.environment["JETBACKUP_INSTANCE"] ?? FileManager.default.currentDirectoryPath
        return Paths.absolute(p)
    }
}

struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false
}

/// Keys and values are UTF-8 text unless `--hex`.
struct HexOption: ParsableArguments {
    @Flag(name: .long, help: "Keys and values are hex bytes.")
    var hex = false

    func bytes(_ s: String, _ what: String) throws -> [UInt8] {
        guard hex else { return Array(s.utf8) }
        return try Hex.decode(s, what)
    }

    func text(_ b: [UInt8]) -> String { hex ? Hex.encode(b) : String(decoding: b, as: UTF8.self) }
}

enum Hex {
    static func encode(_ b: [UInt8]) -> String {
        let d = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(b.count * 2)
        for x in b { out.append(d[Int(x >> 4)]); out.append(d[Int(x & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ s: String, _ what: String) throws -> [UInt8] {
        let u = Array(s.utf8)
        guard u.count % 2 == 0 else { throw JetError(.invalidParameter, "\(what) '\(s)' is not hex: odd number of digits") }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        func nib(_ c: UInt8) throws -> UInt8 {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: throw JetError(.invalidParameter, "\(what) '\(s)' is not hex")
            }
        }
        var i = 0
        while i < u.count { out.append(try nib(u[i]) << 4 | nib(u[i + 1])); i += 2 }
        return out
    }
}

enum Paths {
    /// An absolute path with a symbolic link the user named resolved once (a backup
    /// directory may be a link to another disk); links inside it are never followed.
    static func resolved(_ p: String) -> String {
        let a = absolute(p)
        guard let r = realpath(a, nil) else { return a }
        defer { free(r) }
        return String(cString: r)
    }

    static func absolute(_ p: String) -> String {
        var s = p.hasPrefix("/") ? p : FilePaths.join(FileManager.default.currentDirectoryPath, p)
        while s.count > 1 && s.hasSuffix("/") { s.removeLast() }
        return s
    }
}

/// Sizes on the command line: 4096, 64KiB, 1MiB, 2GiB.
struct Size: ExpressibleByArgument {
    let bytes: Int
    init?(argument: String) {
        guard let n = try? InstanceParameters.parseSize(argument) else { return nil }
        bytes = n
    }
    static var defaultCompletionKind: CompletionKind { .default }
}
