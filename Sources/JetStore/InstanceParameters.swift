#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The system parameters of an instance, kept in `instance.json` (ESE names in comments).
public struct InstanceParameters: Codable, Sendable, Equatable {
    /// JET_paramDatabasePageSize: 4, 8, 16 or 32 KiB; fixed at `init`.
    public var pageSize: Int = 8192
    /// JET_paramLogFileSize: size of each log generation (new generations take a change).
    public var logFileSize: Int = 1024 * 1024
    /// JET_paramCircularLog: delete generations older than the checkpoint.
    public var circularLogging = false
    /// JET_paramRecovery: write-ahead logging on.
    public var loggingEnabled = true
    /// JET_paramCreatePathIfNotExist: backup creates a missing destination.
    public var createPathIfNotExist = false
    /// JET_paramCacheSizeMax: bytes of database pages kept in memory.
    public var cacheSize: Int = 32 * 1024 * 1024
    /// JET_paramCheckpointDepthMax: log bytes after which dirty pages are flushed and the
    /// checkpoint advances. ESE's default is 20 MB; ours is larger for throughput: each
    /// checkpoint writes every dirty page, fsyncs the databases and starts a doublewrite epoch
    /// (every page written after it is copied again). Measured with 1.5 M random inserts of
    /// 150 bytes, three runs each: 20 MiB 49–58 k records/s, 128 MiB 64–68 k, for at most
    /// 128 MiB of log to replay after a crash (README, "Checkpoint").
    public var checkpointDepth: Int = 128 * 1024 * 1024
    /// Bytes of page copies the doublewrite file (`edb.dw`) holds between two fsyncs of the
    /// databases; nil: eight times `cacheSize`, at least 64 MiB. Larger: fewer fsyncs and
    /// fewer copies under random writes over a large database, for a larger file.
    public var doublewriteSize: Int?
    /// The instance's log signature (fixed at `init`).
    public var logSignatureRandom: UInt64 = 0
    public var logSignatureTime: UInt64 = 0
    public var format = "jetbackup-instance"
    public var formatVersion = 1

    public init() {}

    public var logSignature: Signature { Signature(random: logSignatureRandom, time: logSignatureTime) }

    public var effectiveDoublewriteSize: Int { doublewriteSize ?? max(64 << 20, 8 * cacheSize) }

    /// Names `config` accepts, with whether they may change after `init`.
    public static let keys: [(name: String, ese: String, mutable: Bool)] = [
        ("page-size", "JET_paramDatabasePageSize", false),
        ("log-file-size", "JET_paramLogFileSize", true),
        ("circular-logging", "JET_paramCircularLog", true),
        ("logging", "JET_paramRecovery", false),
        ("create-path-if-not-exist", "JET_paramCreatePathIfNotExist", true),
        ("cache-size", "JET_paramCacheSizeMax", true),
        ("checkpoint-depth", "JET_paramCheckpointDepthMax", true),
        ("doublewrite-size", "none (InnoDB's doublewrite buffer)", true),
    ]

    public func value(of key: String) -> String? {
        switch key {
        case "page-size": String(pageSize)
        case "log-file-size": String(logFileSize)
        case "circular-logging": String(circularLogging)
        case "logging": String(loggingEnabled)
        case "create-path-if-not-exist": String(createPathIfNotExist)
        case "cache-size": String(cacheSize)
        case "checkpoint-depth": String(checkpointDepth)
        case "doublewrite-size": String(effectiveDoublewriteSize)
        default: nil
        }
    }

    /// Changes a parameter; the error says why a value or key is refused.
    public mutating func set(_ key: String, _ text: String) throws {
        guard let entry = Self.keys.first(where: { $0.name == key }) else {
            throw JetError(.invalidParameter, "unknown parameter '\(key)'; known: \(Self.keys.map(\.name).joined(separator: ", "))")
        }
        guard entry.mutable else {
            throw JetError(.invalidParameter, "\(key) (\(entry.ese)) is fixed when the instance is created; create a new instance to change it")
        }
        switch key {
        case "log-file-size":
            let n = try Self.parseSize(text)
            try Self.checkLogFileSize(n)
            logFileSize = n
        case "circular-logging": circularLogging = try Self.parseBool(text, key)
        case "create-path-if-not-exist": createPathIfNotExist = try Self.parseBool(text, key)
        case "cache-size":
            let n = try Self.parseSize(text)
            guard n >= 256 * 1024 else { throw JetError(.invalidParameter, "cache-size must be at least 256KiB") }
            cacheSize = n
        case "checkpoint-depth":
            let n = try Self.parseSize(text)
            guard n >= 64 * 1024 else { throw JetError(.invalidParameter, "checkpoint-depth must be at least 64KiB") }
            checkpointDepth = n
        case "doublewrite-size":
            let n = try Self.parseSize(text)
            guard n >= 1 << 20 else { throw JetError(.invalidParameter, "doublewrite-size must be at least 1MiB") }
            doublewriteSize = n
        default: break
        }
    }

    public static func checkPageSize(_ n: Int) throws {
        guard PageFormat.supportedPageSizes.contains(n) else {
            throw JetError(.invalidParameter, "page size \(n) is not supported; use 4KiB, 8KiB, 16KiB or 32KiB")
        }
    }

    public static func checkLogFileSize(_ n: Int) throws {
        guard n >= LogFormat.minimumFileSize, n <= LogFormat.maximumFileSize, n % 4096 == 0 else {
            throw JetError(.invalidParameter, "log file size \(n) must be a multiple of 4KiB between 64KiB and 1GiB")
        }
    }

    static func parseBool(_ s: String, _ key: String) throws -> Bool {
        switch s.lowercased() {
        case "true", "on", "yes", "1": return true
        case "false", "off", "no", "0": return false
        default: throw JetError(.invalidParameter, "\(key) takes true or false, not '\(s)'")
        }
    }

    /// Sizes: `4096`, `64KiB`, `1MiB`, `2GiB` (also `K`, `M`, `G`, `KB`…, all binary).
    public static func parseSize(_ text: String) throws -> Int {
        let s = text.trimmed
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        let unit = s.dropFirst(digits.count).lowercased()
        guard !digits.isEmpty, let n = Int(digits) else {
            throw JetError(.invalidParameter, "'\(text)' is not a size; write for example 4096, 64KiB, 1MiB or 2GiB")
        }
        let mult: Int
        switch unit {
        case "", "b": mult = 1
        case "k", "kb", "kib": mult = 1 << 10
        case "m", "mb", "mib": mult = 1 << 20
        case "g", "gb", "gib": mult = 1 << 30
        case "t", "tb", "tib": mult = 1 << 40
        default: throw JetError(.invalidParameter, "'\(text)' has an unknown unit '\(unit)'; use KiB, MiB or GiB")
        }
        let (r, overflow) = n.multipliedReportingOverflow(by: mult)
        guard !overflow else { throw JetError(.invalidParameter, "'\(text)' is too large") }
        return r
    }

    static func load(fs: any FileSystem, path: String) throws -> InstanceParameters {
        let bytes = try fs.readAll(path)
        do {
            let p = try JSONDecoder().decode(InstanceParameters.self, from: Data(bytes))
            guard p.format == "jetbackup-instance", p.formatVersion == 1 else {
                throw JetError(.invalidParameter, "\(path) is not a jetbackup instance file of a version this tool reads")
            }
            try checkPageSize(p.pageSize)
            try checkLogFileSize(p.logFileSize)
            return p
        } catch let e as JetError {
            throw e
        } catch {
            throw JetError(.invalidParameter, "\(path) is damaged (\(error)); fix it or restore the instance from a backup")
        }
    }

    func save(fs: any FileSystem, path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? enc.encode(self)) ?? Data()
        try fs.writeAtomically(path, [UInt8](data) + [0x0A])
    }
}
