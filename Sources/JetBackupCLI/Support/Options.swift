import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetBackup
import JetStore

/// `-i/--instance PATH`, else `$JETBACKUP_INSTANCE`, else the current directory.
struct InstanceOptions: ParsableArguments {
    @Option(name: [.customShort("i"), .customLong("instance")], help: "The instance directory.")
    var instance: String?
    @Option(help: ArgumentHelp("Wait up to DURATION (30s, 5m, 1h) for a lock another process holds instead of failing at once.",
                               valueName: "DURATION"))
    var wait: DurationArgument?

    func validate() throws {
        LockWaitSetting.seconds.withLock { $0 = wait?.seconds }
    }

    var path: String {
        let p = instance ?? CLI.environment("JETBACKUP_INSTANCE") ?? CLI.currentDirectory
        return Paths.absolute(p)
    }
}

struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout.")
    var json = false
}

/// How keys and values are written on the command line and printed: UTF-8 text by default,
/// hex bytes with `--hex`, or the escaped text form of `Escaped` with `--escaped`.
struct HexOption: ParsableArguments {
    @Flag(name: .long, help: "Keys and values are hex bytes.")
    var hex = false
    @Flag(name: .long, help: ArgumentHelp("Keys and values are in scan's escaped text form (\\\\ \\t \\n \\r \\xHH), so any bytes can be typed; "
        + "get prints that form."))
    var escaped = false

    func validate() throws {
        if hex && escaped { throw ValidationError("--hex and --escaped exclude each other") }
    }

    func bytes(_ s: String, _ what: String) throws -> [UInt8] {
        if hex { return try Hex.decode(s, what) }
        if escaped { return try Escaped.decode(s, what) }
        return Array(s.utf8)
    }

    /// The one-line text form `scan` prints: hex with `--hex`, else escaped (always: a raw tab
    /// or newline in a key would split or merge records).
    func line(_ b: [UInt8]) -> String { hex ? Hex.encode(b) : Escaped.encode(b) }

    /// A key or value as JSON fields: `name` holds the exact text, or hex with `--hex`. Bytes
    /// that are not valid UTF-8 have no exact JSON string: `name` is then null and `nameHex`
    /// holds them, rather than a string with U+FFFD in place of the bytes.
    func json(_ name: String, _ b: [UInt8]) -> [(String, JSONValue)] {
        if hex { return [(name, .string(Hex.encode(b)))] }
        if let s = String(validating: b, as: UTF8.self) { return [(name, .string(s))] }
        return [(name, .null), (name + "Hex", .string(Hex.encode(b)))]
    }
}

/// The escaped text form of keys and values (README "Keys and values as text"): valid UTF-8
/// is written as it is, except `\` as `\\`, tab `\t`, newline `\n`, carriage return `\r`;
/// every other control byte (0x00-0x1F, 0x7F) and every byte that is not part of valid UTF-8
/// as `\xHH`. One record is one line, and `decode` gives back exactly the bytes.
enum Escaped {
    static func encode(_ b: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(b.count)
        func byte(_ x: UInt8) { out += [0x5C, 0x78, digits[Int(x >> 4)], digits[Int(x & 15)]] }
        var parser = Unicode.UTF8.ForwardParser()
        var it = b.makeIterator()
        var i = 0
        while true {
            switch parser.parseScalar(from: &it) {
            case .valid(let scalar):
                let n = scalar.count
                if n == 1 {
                    let c = b[i]
                    switch c {
                    case 0x5C: out += [0x5C, 0x5C]
                    case 0x09: out += [0x5C, 0x74]
                    case 0x0A: out += [0x5C, 0x6E]
                    case 0x0D: out += [0x5C, 0x72]
                    case 0..<0x20, 0x7F: byte(c)
                    default: out.append(c)
                    }
                } else {
                    out += b[i..<(i + n)]
                }
                i += n
            case .error(let n):
                for x in b[i..<(i + n)] { byte(x) }
                i += n
            case .emptyInput:
                return String(decoding: out, as: UTF8.self)
            }
        }
    }

    static func decode(_ s: String, _ what: String) throws -> [UInt8] {
        let u = Array(s.utf8)
        var out = [UInt8]()
        out.reserveCapacity(u.count)
        var i = 0
        while i < u.count {
            guard u[i] == 0x5C else { out.append(u[i]); i += 1; continue }
            guard i + 1 < u.count else { throw JetError(.invalidParameter, "\(what) '\(s)' ends in a lone backslash; write \\\\ for a backslash") }
            switch u[i + 1] {
            case 0x5C: out.append(0x5C); i += 2
            case 0x74: out.append(0x09); i += 2
            case 0x6E: out.append(0x0A); i += 2
            case 0x72: out.append(0x0D); i += 2
            case 0x78:
                guard i + 3 < u.count, let b = try? Hex.decode(String(decoding: u[(i + 2)...(i + 3)], as: UTF8.self), what) else {
                    throw JetError(.invalidParameter, "\(what) '\(s)' has \\x without two hex digits")
                }
                out += b; i += 4
            default:
                throw JetError(.invalidParameter, "\(what) '\(s)' has an unknown escape '\\\(Character(Unicode.Scalar(u[i + 1])))'; known: "
                    + "\\\\ \\t \\n \\r \\xHH")
            }
        }
        return out
    }
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
        var s = p.hasPrefix("/") ? p : FilePaths.join(CLI.currentDirectory, p)
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

/// Durations on the command line: 90s, 30m, 2h, 1d, 1w (or plain seconds).
struct DurationArgument: ExpressibleByArgument {
    let seconds: Double
    init?(argument: String) {
        guard let s = Durations.parse(argument) else { return nil }
        seconds = s
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// Rates on the command line: bytes per second, as sizes: 50MiB, 512KiB, 1000000.
struct RateArgument: ExpressibleByArgument {
    let bytesPerSecond: Int64
    init?(argument: String) {
        var a = argument
        if a.hasSuffix("/s") { a.removeLast(2) }
        guard let n = try? InstanceParameters.parseSize(a), n > 0 else { return nil }
        bytesPerSecond = Int64(n)
    }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// `--repo DIR [--set LABEL]` of the commands that read a set (verify, show, restore).
struct RepoSetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read a set of the repository DIR instead of a backup directory.", valueName: "DIR"))
    var repo: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("With --repo: the set's label (default: the newest complete set).",
                                                        valueName: "LABEL"))
    var setLabel: String?
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if setLabel != nil && repo == nil { throw ValidationError("--set needs --repo") }
    }

    /// The backup directory to read (DIR, or the set the repository options select), its
    /// repository, and the file system it is read through.
    func directory(_ dir: String?) throws -> (path: String, repository: Repository?, fs: any FileSystem) {
        if let repo {
            guard dir == nil else { throw ValidationError("give a backup directory or --repo, not both") }
            let r = try store.openRepository(repo)
            return (try r.select(setLabel).path, r, r.fs)
        }
        guard let dir else { throw ValidationError("give a backup directory, or --repo DIR") }
        if store.keyFile != nil {
            throw JetError(.invalidParameter, "--key-file applies to an encrypted repository: read its sets with --repo DIR [--set LABEL]")
        }
        let (path, fs) = try store.location(dir)
        return (path, nil, fs)
    }
}
