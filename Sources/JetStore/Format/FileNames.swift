/// Every file name of an instance in one place (leveldb `db/filename.cc`).
public enum FileNames {
    public static let parameters = "instance.json"
    public static let lock = "LOCK"
    public static let checkpoint = "edb.chk"
    public static let currentLog = "edb.log"
    /// The next generation, created ahead so a roll is a rename.
    public static let preparedLog = "edbtmp.log"
    public static let events = "events.log"
    /// Page copies written before pages are written in place (torn-page repair).
    public static let doublewrite = "edb.dw"
    public static let databaseExtension = ".edb"
    /// A restore in progress into this directory (its presence refuses other commands).
    public static let restoreMarker = "RESTORE_IN_PROGRESS"
    /// The owner's control socket (README "Backups of a running instance").
    public static let controlSocket = "control.sock"

    /// `edb0000002A.log`: 8 upper-case hex digits.
    public static func archivedLog(_ generation: UInt32) -> String {
        "edb" + hex8(generation) + ".log"
    }

    /// `edbres0000002A.jrs`: generation 2A's file, kept after a truncation for a later roll to
    /// overwrite (`LogSpares`; ESE names its reserve logs `.jrs` too). Not a generation.
    public static func spareLog(_ generation: UInt32) -> String {
        "edbres" + hex8(generation) + ".jrs"
    }

    /// True if `name` is a spare log file (`spareLog`).
    public static func isSpareLog(_ name: String) -> Bool {
        guard name.hasPrefix("edbres"), name.hasSuffix(".jrs") else { return false }
        let hex = name.dropFirst(6).dropLast(4)
        return hex.count == 8 && hex.allSatisfy { $0.isHexDigit && !$0.isLowercase }
    }

    public static func hex8(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { out[7 - i] = digits[Int((v >> (4 * UInt32(i))) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// The generation named by `edbXXXXXXXX.log` (also `.log.zst` when `compressed`), or nil.
    public static func parseArchivedLog(_ name: String, compressed: Bool = false) -> UInt32? {
        let suffix = compressed ? ".log.zst" : ".log"
        guard name.hasPrefix("edb"), name.hasSuffix(suffix) else { return nil }
        let hex = name.dropFirst(3).dropLast(suffix.count)
        guard hex.count == 8, hex.allSatisfy({ $0.isHexDigit && !$0.isLowercase }) else { return nil }
        return UInt32(hex, radix: 16)
    }

    public static func database(_ name: String) -> String { name + databaseExtension }

    /// The database named by `<name>.edb`, or nil when the file is not one an instance attaches.
    public static func parseDatabase(_ fileName: String) -> String? {
        guard fileName.hasSuffix(databaseExtension) else { return nil }
        let stem = String(fileName.dropLast(databaseExtension.count))
        return isValidDatabaseName(stem) ? stem : nil
    }

    /// Database names: 1–64 characters of letters, digits, `_` and `-`, so the file name is
    /// plain (no `/`, no `..`) everywhere it is used.
    public static func isValidDatabaseName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D
        }
    }
}

/// Path helpers: plain string paths, `/`-separated.
public enum FilePaths {
    public static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    public static func directory(of path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return "." }
        if i == path.startIndex { return "/" }
        return String(path[..<i])
    }

    public static func lastComponent(_ path: String) -> String {
        guard let i = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: i)...])
    }

    /// `path` without `.`, `..` or repeated separators, resolved lexically (no links are
    /// looked at); relative paths stay relative.
    public static func normalized(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/", omittingEmptySubsequences: true) {
            if c == "." { continue }
            if c == ".." {
                if let last = parts.last, last != ".." { parts.removeLast(); continue }
                if path.hasPrefix("/") { continue }
            }
            parts.append(c)
        }
        let body = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + body : (body.isEmpty ? "." : body)
    }

    /// True if `path` is `ancestor` or below it (both normalized the same way).
    public static func isSameOrBelow(_ path: String, _ ancestor: String) -> Bool {
        path == ancestor || path.hasPrefix(ancestor == "/" ? "/" : ancestor + "/")
    }

    /// A name that is safe to join to a directory: no separator, not `.` or `..`, not empty.
    public static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0") && name.utf8.count <= 255
    }
}
