#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// `MANIFEST.json`: what a backup set holds. Written and fsynced last (then renamed into
/// place), so its presence means every file it names was complete and durable.
///
/// Format 2 carries `checksum`, so damage to any field is found, not only to the files it
/// names. Format 1 (sets written before) has none and is still read.
public struct BackupManifest: Codable, Sendable, Equatable {
    public static let formatName = "jetbackup-backup-set"
    public static let formatVersion = 2
    /// The last format whose manifests may lack `checksum`.
    public static let unsealedFormatVersion = 1

    public struct SignatureJSON: Codable, Sendable, Equatable {
        /// 16 hex digits.
        public var random: String
        /// Microseconds since the epoch.
        public var time: UInt64

        public init(_ s: Signature) {
            let r = String(s.random, radix: 16)
            random = String(repeating: "0", count: 16 - r.count) + r
            time = s.time
        }

        public var signature: Signature? { UInt64(random, radix: 16).map { Signature(random: $0, time: time) } }
    }

    public struct Position: Codable, Sendable, Equatable {
        public var generation: UInt32
        public var offset: UInt32
    }

    public struct Database: Codable, Sendable, Equatable {
        public var name: String
        public var file: String
        public var dbid: UInt32
        public var signature: SignatureJSON
        public var pageSize: Int
        public var pages: Int
    }

    /// What a backup of the chain is; stored as its raw value.
    public enum BackupType: String, Codable, Sendable {
        case full
        case incremental
    }

    /// What a file of the set is; stored as its raw value.
    public enum FileKind: String, Codable, Sendable {
        case database
        case log
    }

    public struct Backup: Codable, Sendable, Equatable {
        public var type: BackupType
        public var start: String
        public var end: String
        public var startMicros: UInt64
        public var endMicros: UInt64
        public var genLow: UInt32
        public var genHigh: UInt32
        /// "none" or "zstd-LEVEL".
        public var compression: String
        /// The latest commit time (µs since the epoch, as the log's commit records carry it)
        /// of the transactions a restore of the chain through this backup holds: of the full
        /// backup, the set's consistent time; of the last backup, the set's end (README
        /// "Point-in-time restore"; `Backup.lastCommit`). Absent in sets written before it
        /// was recorded. Verify and restore check it against the logs.
        public var lastCommitMicros: UInt64?
    }

    public struct File: Codable, Sendable, Equatable {
        public var name: String
        public var kind: FileKind
        public var generation: UInt32?
        /// Index in `chain` of the backup that wrote it.
        public var backup: Int
        public var size: Int64
        public var crc32c: UInt32
        public var sha256: String
        /// For compressed logs: the size and CRC32C after decompression.
        public var rawSize: Int64?
        public var rawCrc32c: UInt32?
    }

    public var format = formatName
    public var formatVersion = formatVersion
    public var toolVersion = JetBackupVersion.string
    public var logSignature: SignatureJSON
    /// Replay of the set starts here (the checkpoint when the full backup began).
    public var replayFrom: Position
    public var pageSize: Int
    public var databases: [Database]
    public var chain: [Backup]
    public var files: [File]
    /// SHA-256 (hex) of the canonical encoding of every other field: compact JSON with sorted
    /// keys, this field left out. Required from format 2 on.
    public var checksum: String?

    public var lastGeneration: UInt32 { chain.map(\.genHigh).max() ?? 0 }

    /// The manifest as written: the current format, sealed with its checksum.
    public func encoded() throws -> [UInt8] {
        var m = self
        m.formatVersion = Self.formatVersion
        m.checksum = try m.computedChecksum()
        return try m.encodedAsIs()
    }

    /// The text of the manifest with its fields as they are (`checksum` included).
    func encodedAsIs() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return [UInt8](try enc.encode(self)) + [0x0A]
    }

    /// The checksum the content calls for (whatever `checksum` holds now).
    func computedChecksum() throws -> String {
        var m = self
        m.checksum = nil
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(m).withUnsafeBytes { SHA256Hasher.hex($0) }
    }

    /// Parses and checks a manifest: well-formed, a format we read, plain file names only,
    /// no duplicates, sane numbers. Every problem is `JET_errDatabaseCorrupted` naming the file.
    public static func decode(_ bytes: [UInt8], path: String) throws -> BackupManifest {
        func bad(_ why: String) -> JetError {
            JetError(.databaseCorrupted, "the backup set's manifest \(path) is not valid (\(why)); the set cannot be trusted: use another backup")
        }
        let m: BackupManifest
        do {
            m = try JSONDecoder().decode(BackupManifest.self, from: Data(bytes))
        } catch {
            throw bad("not a readable manifest: \(Self.describe(error))")
        }
        guard m.format == formatName else { throw bad("format '\(m.format)'") }
        guard (unsealedFormatVersion...formatVersion).contains(m.formatVersion) else {
            throw bad("format version \(m.formatVersion); this jetbackup reads \(unsealedFormatVersion) to \(formatVersion)")
        }
        // The checksum first: the checks below then only meet manifests as written (or
        // unsealed ones of format 1).
        if let sum = m.checksum {
            guard sum == (try? m.computedChecksum()) else {
                throw bad("its checksum does not match its content: a field was damaged or edited")
            }
        } else if m.formatVersion > unsealedFormatVersion {
            throw bad("it has no checksum, which format \(m.formatVersion) requires")
        }
        guard m.logSignature.signature != nil else { throw bad("log signature") }
        guard PageFormat.supportedPageSizes.contains(m.pageSize) else { throw bad("page size \(m.pageSize)") }
        guard !m.chain.isEmpty, m.chain[0].type == .full, m.chain.dropFirst().allSatisfy({ $0.type == .incremental }) else {
            throw bad("the chain must be one full backup followed by incrementals")
        }
        // Generation numbers leave room for the next one (no arithmetic on them can overflow).
        guard m.replayFrom.generation < UInt32.max, m.chain.allSatisfy({ $0.genLow <= $0.genHigh && $0.genHigh < UInt32.max }) else {
            throw bad("log generations of the chain")
        }
        var names = Set<String>()
        for f in m.files {
            guard FilePaths.isPlainName(f.name), !f.name.hasPrefix(".") else { throw bad("file name '\(f.name)' is not a plain name") }
            guard names.insert(f.name).inserted else { throw bad("file '\(f.name)' is listed twice") }
            guard f.size >= 0, f.size <= 1 << 46, (f.rawSize ?? 0) >= 0, (f.rawSize ?? 0) <= 1 << 40 else { throw bad("size of '\(f.name)'") }
            guard f.backup >= 0, f.backup < m.chain.count else { throw bad("backup index of '\(f.name)'") }
            guard f.sha256.count == 64, f.sha256.allSatisfy({ $0.isHexDigit }) else { throw bad("sha256 of '\(f.name)'") }
            switch f.kind {
            case .database:
                guard f.name.hasSuffix(".edb"), f.generation == nil, f.rawSize == nil, f.rawCrc32c == nil else {
                    throw bad("database file '\(f.name)'")
                }
                // Images are written by the full backup.
                guard f.backup == 0 else { throw bad("backup index of '\(f.name)'") }
            case .log:
                guard let g = f.generation,
                      FileNames.parseArchivedLog(f.name) == g || FileNames.parseArchivedLog(f.name, compressed: true) == g else {
                    throw bad("log file '\(f.name)' and its generation disagree")
                }
                let b = m.chain[f.backup]
                guard b.genLow <= g && g <= b.genHigh else {
                    throw bad("log file '\(f.name)' is outside the generations \(b.genLow)-\(b.genHigh) of the backup that wrote it")
                }
                guard f.name.hasSuffix(".zst") == (f.rawSize != nil), (f.rawSize == nil) == (f.rawCrc32c == nil) else {
                    throw bad("compression fields of '\(f.name)'")
                }
            }
        }
        var dbNames = Set<String>()
        for d in m.databases {
            guard FileNames.isValidDatabaseName(d.name), d.file == d.name + ".edb", dbNames.insert(d.name).inserted,
                  names.contains(d.file), d.signature.signature != nil, d.pageSize == m.pageSize, d.pages >= 0 else {
                throw bad("database entry '\(d.name)'")
            }
        }
        let images = Set(m.files.filter { $0.kind == .database }.map(\.name))
        guard images == Set(m.databases.map(\.file)) else {
            throw bad("the database files and the database entries disagree")
        }
        return m
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.keyNotFound(let k, _):
            return "missing field '\(k.stringValue)'"
        case DecodingError.dataCorrupted(let c):
            return "malformed JSON \(c.debugDescription)"
        default:
            return "\(error)"
        }
    }

    /// The text of `SHA256SUMS`, in the format `sha256sum -c` reads.
    public func sha256sums() -> [UInt8] {
        Array(files.map { "\($0.sha256)  \($0.name)\n" }.joined().utf8)
    }
}
