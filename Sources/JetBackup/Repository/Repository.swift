#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A repository: a directory of many backup sets, one directory per set named by its
/// label (`SetLabel`), each a full backup and the incrementals that extend it. The marker
/// file `JETBACKUP-REPOSITORY` (this type defines its format; README "Repositories") makes
/// a directory one. Beside the sets it holds only names that begin with a dot: the
/// repository lock, its event log, and sets being removed (`.expiring-LABEL`).
public struct Repository: Sendable {
    public static let markerName = "JETBACKUP-REPOSITORY"
    public static let formatName = "jetbackup-repository"
    /// 1: a plain repository; 2: an encrypted one (its marker holds the wrapped data key, and
    /// a reader of version 1 must not take its encrypted files for damaged plain ones).
    public static let formatVersion = 2
    public static let lockName = ".jetbackup-repository-lock"
    public static let eventsName = ".jetbackup-events.log"
    public static let expiringPrefix = ".expiring-"
    /// In a set's directory: the result of the last verify (`VerificationRecord`).
    public static let verifiedName = ".jetbackup-verified"

    /// The marker's content. Decoding refuses any other format or a newer version.
    public struct Marker: Codable, Equatable, Sendable {
        public var format = Repository.formatName
        /// 1 for a plain repository (as every earlier jetbackup wrote), 2 for an encrypted one.
        public var formatVersion = 1
        public var created: String
        /// The data key wrapped under the passphrase: present in an encrypted repository only.
        public var key: RepositoryKey?

        public func encoded() throws -> [UInt8] {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            return [UInt8](try enc.encode(self)) + [0x0A]
        }

        public static func decode(_ bytes: [UInt8], path: String) throws -> Marker {
            guard let m = try? JSONDecoder().decode(Marker.self, from: Data(bytes)), m.format == formatName else {
                throw JetError(.invalidPath, "\(path) is not a repository marker this tool wrote; the directory is not a repository")
            }
            guard m.formatVersion >= 1, m.formatVersion <= Repository.formatVersion else {
                throw JetError(.invalidParameter, "\(path) says repository format \(m.formatVersion), this jetbackup reads 1 to "
                    + "\(Repository.formatVersion); use a newer jetbackup (nothing was read or written)")
            }
            guard (m.formatVersion >= 2) == (m.key != nil) else {
                throw JetError(.databaseCorrupted, "\(path) says format \(m.formatVersion) but \(m.key == nil ? "holds no key" : "holds a key"): "
                    + "the marker was edited; restore it from a copy")
            }
            return m
        }
    }

    public let path: String
    /// The repository's files: through `EncryptedFileSystem` when it is encrypted.
    public let fs: any FileSystem
    public let clock: WallClock
    public var isEncrypted: Bool { fs is EncryptedFileSystem }

    /// Makes `dir` a repository: it must be missing (its parent existing) or empty. With a
    /// passphrase, an encrypted one: a new data key, wrapped under it, is kept in the marker.
    @discardableResult
    public static func create(_ dir: String, fs: any FileSystem = PosixFileSystem(), clock: WallClock = .system,
                              passphrase: [UInt8]? = nil) throws -> Repository {
        if fs.isSymlink(dir) || (fs.exists(dir) && !fs.isDirectory(dir)) {
            throw JetError(.invalidPath, "\(dir) exists and is not a directory; a repository is a directory")
        }
        if fs.exists(dir) {
            let entries = try fs.list(dir)
            if entries.contains(markerName) { throw JetError(.invalidPath, "\(dir) is a repository already") }
            guard entries.isEmpty else {
                throw JetError(.invalidPath, "\(dir) is not empty (\(entries.prefix(3).joined(separator: ", "))); "
                    + "a repository is made in a new or empty directory")
            }
        } else {
            try JetBackupInstance.createPath(dir, fs: fs)
        }
        var m = Marker(created: Clock.rfc3339(microseconds: clock.now()))
        var key: DataKey?
        if let passphrase {
            let k = DataKey.generate()
            m.key = try RepositoryKey.wrap(k, passphrase: passphrase)
            m.formatVersion = 2
            key = k
        } else {
            m.formatVersion = 1
        }
        try fs.writeAtomically(FilePaths.join(dir, markerName), try m.encoded())
        return Repository(path: dir, fs: key.map { EncryptedFileSystem(base: fs, key: $0) } ?? fs, clock: clock)
    }

    /// Opens the repository in `dir`: its marker must be there and of a version we read. An
    /// encrypted repository needs the passphrase that opens its key (a missing or wrong one is
    /// JET_errPermissionDenied, before any set is read); `passphrase` given to a plain one is
    /// refused when `requireEncrypted` (it was asked for explicitly), ignored otherwise.
    public static func open(_ dir: String, fs: any FileSystem = PosixFileSystem(), clock: WallClock = .system,
                            passphrase: [UInt8]? = nil, requireEncrypted: Bool = false) throws -> Repository {
        try open(dir, fs: fs, clock: clock, requireEncrypted: requireEncrypted) { passphrase }
    }

    /// The same, with the passphrase read only if the repository is encrypted (or
    /// `requireEncrypted`): a key file meant for other repositories never fails a plain one.
    public static func open(_ dir: String, fs: any FileSystem = PosixFileSystem(), clock: WallClock = .system,
                            requireEncrypted: Bool = false, passphrase readPassphrase: () throws -> [UInt8]?) throws -> Repository {
        let m = try readMarker(dir, fs: fs)
        guard let wrapped = m.key else {
            if requireEncrypted, try readPassphrase() != nil {
                throw JetError(.invalidParameter, "repository \(dir) is not encrypted; a key file applies only to a repository "
                    + "made with encryption (nothing was read or written)")
            }
            return Repository(path: dir, fs: fs, clock: clock)
        }
        guard let passphrase = try readPassphrase() else {
            throw JetError(.permissionDenied, "repository \(dir) is encrypted and no key file was given; nothing was read or written: "
                + "give the key file that holds its passphrase")
        }
        let key = try wrapped.unwrap(passphrase: passphrase)
        return Repository(path: dir, fs: EncryptedFileSystem(base: fs, key: key), clock: clock)
    }

    static func readMarker(_ dir: String, fs: any FileSystem) throws -> Marker {
        guard fs.isDirectory(dir) else {
            try fs.objectStore?.throwIfQueryFailed()
            throw JetError(.invalidPath, "repository \(dir) does not exist")
        }
        let mp = FilePaths.join(dir, markerName)
        guard fs.exists(mp), !fs.isSymlink(mp), !fs.isDirectory(mp) else {
            try fs.objectStore?.throwIfQueryFailed()
            throw JetError(.invalidPath, "\(dir) is not a repository (no \(markerName) in it); make one with the repository init command")
        }
        return try Marker.decode(try fs.readAll(mp), path: mp)
    }

    /// Rewraps the data key of the encrypted repository in `dir` under `new`: the marker is
    /// replaced (atomically), no other file changes. Held under the repository lock.
    public static func changeKey(_ dir: String, fs: any FileSystem = PosixFileSystem(), old: [UInt8], new: [UInt8],
                                 owner: String, wait: Double? = nil) throws {
        let plain = Repository(path: dir, fs: fs, clock: .system)
        _ = try readMarker(dir, fs: fs)
        let lock = try RepositoryLock.acquire(plain, owner: owner, wait: wait)
        defer { lock.release() }
        var m = try readMarker(dir, fs: fs)
        guard let wrapped = m.key else {
            throw JetError(.invalidParameter, "repository \(dir) is not encrypted; it has no key to change")
        }
        m.key = try wrapped.rewrap(old: old, new: new)
        try fs.writeAtomically(FilePaths.join(dir, markerName), try m.encoded())
    }

    public func setPath(_ label: SetLabel) -> String { FilePaths.join(path, label.description) }

    public var events: RepositoryEvents { RepositoryEvents(fs: fs, path: FilePaths.join(path, Self.eventsName), clock: clock) }

    /// Every set and every entry that is not one (reported, never touched), in label order.
    public func scan() throws -> RepositoryScan {
        var scan = RepositoryScan()
        for name in try fs.list(path) where !name.hasPrefix(".") && name != Self.markerName {
            let p = FilePaths.join(path, name)
            guard let label = SetLabel(name) else {
                scan.skipped.append((name, "not a set label (YYYYMMDDTHHMMSSZ-full); left alone"))
                continue
            }
            if fs.isSymlink(p) {
                scan.skipped.append((name, "is a symbolic link; a set is a directory inside the repository: not read, not removed"))
                continue
            }
            guard fs.isDirectory(p) else {
                scan.skipped.append((name, "is not a directory; left alone"))
                continue
            }
            scan.sets.append(RepositorySet.inspect(label, path: p, fs: fs))
        }
        // A set's state rests on what the store answered: one that did not answer is an error,
        // not a set without a manifest (which expire would remove).
        try fs.objectStore?.throwIfQueryFailed()
        // A set copied under another label holds the same full backup: neither can be told
        // from the other, so neither is trusted.
        var seen: [String: Int] = [:]
        for i in scan.sets.indices {
            guard let m = scan.sets[i].manifest, scan.sets[i].state == .complete else { continue }
            let key = "\(m.logSignature.random)/\(m.logSignature.time)/\(m.chain[0].startMicros)/\(m.replayFrom.generation)/\(m.replayFrom.offset)"
            if let j = seen[key] {
                let why = "sets \(scan.sets[j].label) and \(scan.sets[i].label) claim the same full backup (one is a copy); neither is trusted"
                scan.sets[i].state = .damaged; scan.sets[i].problem = why
                scan.sets[j].state = .damaged; scan.sets[j].problem = why
            } else {
                seen[key] = i
            }
        }
        return scan
    }

    /// The set `label` names (`--set`), or the newest complete one.
    public func select(_ label: String?) throws -> RepositorySet {
        let scan = try self.scan()
        guard let label else {
            guard let s = scan.newestComplete else {
                throw JetError(.invalidBackupSequence, "repository \(path) holds no complete set; take a full backup into it")
            }
            return s
        }
        guard let l = SetLabel(label) else {
            throw JetError(.invalidParameter, "'\(label)' is not a set label (YYYYMMDDTHHMMSSZ-full, as the set list shows)")
        }
        if let why = scan.skipped.first(where: { $0.name == label }) {
            throw JetError(.invalidPath, "\(FilePaths.join(path, label)) \(why.reason)")
        }
        guard let s = scan.sets.first(where: { $0.label == l }) else {
            throw JetError(.invalidPath, "repository \(path) holds no set \(label)")
        }
        return s
    }
}

/// What `Repository.scan` found.
public struct RepositoryScan: Sendable {
    public var sets: [RepositorySet] = []
    public var skipped: [(name: String, reason: String)] = []

    public var newest: RepositorySet? { sets.last }
    public var newestComplete: RepositorySet? { sets.last { $0.state == .complete } }
    public var completeCount: Int { sets.filter { $0.state == .complete }.count }
}

/// One set of a repository and what a cheap look at it shows (no file's content is read
/// but the manifest, SHA256SUMS and the verification record).
public struct RepositorySet: Sendable {
    public enum State: String, Sendable {
        /// The manifest and SHA256SUMS check, and no verify of this manifest failed.
        case complete
        /// No manifest and nothing else but the leftovers of a run that stopped (or runs).
        case incomplete
        /// A manifest that fails its checks, set files without a manifest, a failed verify.
        case damaged
    }

    public var label: SetLabel
    public var path: String
    public var state: State
    public var problem: String?
    public var manifest: BackupManifest?
    public var verification: VerificationRecord?

    /// When the newest backup of the chain ended (the label's time for a set without one).
    public var endMicros: UInt64 { manifest?.chain.last?.endMicros ?? label.microseconds }

    static func inspect(_ label: SetLabel, path: String, fs: any FileSystem) -> RepositorySet {
        var s = RepositorySet(label: label, path: path, state: .incomplete)
        let mp = FilePaths.join(path, BackupSetLayout.manifest)
        guard fs.exists(mp) || fs.isSymlink(mp) else {
            do {
                _ = try BackupSetLayout.requireSet(path, fs: fs)
            } catch let e as JetError where e.code == .databaseCorrupted {
                s.state = .damaged; s.problem = e.message
                return s
            } catch {}
            s.problem = "no \(BackupSetLayout.manifest): the leftovers of a backup that stopped, or one that is running"
            return s
        }
        do {
            guard !fs.isSymlink(mp) else { throw JetError(.databaseCorrupted, "\(mp) is a symbolic link") }
            let m = try BackupManifest.decode(try fs.readAll(mp), path: mp)
            s.manifest = m
            try SetVerifier(fs: fs).checkStructure(m, setDir: path)
            s.verification = VerificationRecord.read(path, fs: fs)
            if let v = s.verification, !v.ok, v.manifestChecksum == m.checksum {
                s.state = .damaged; s.problem = "verify failed at \(v.time): \(v.message ?? "")"
                return s
            }
            s.state = .complete
        } catch {
            s.state = .damaged
            s.problem = (error as? JetError)?.message ?? "\(error)"
        }
        return s
    }
}

/// The result of the last `verify` of a set, kept in the set's directory: when, whether it
/// passed, and of which manifest (a record of an older manifest says nothing of the newer).
public struct VerificationRecord: Codable, Sendable {
    public var time: String
    public var timeMicros: UInt64
    public var ok: Bool
    public var manifestChecksum: String?
    public var message: String?

    public init(time: String, timeMicros: UInt64, ok: Bool, manifestChecksum: String?, message: String?) {
        self.time = time
        self.timeMicros = timeMicros
        self.ok = ok
        self.manifestChecksum = manifestChecksum
        self.message = message
    }

    public static func read(_ setDir: String, fs: any FileSystem) -> VerificationRecord? {
        let p = FilePaths.join(setDir, Repository.verifiedName)
        guard fs.exists(p), !fs.isSymlink(p), let b = try? fs.readAll(p) else { return nil }
        return try? JSONDecoder().decode(VerificationRecord.self, from: Data(b))
    }

    public func write(_ setDir: String, fs: any FileSystem) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try fs.writeAtomically(FilePaths.join(setDir, Repository.verifiedName), [UInt8](try enc.encode(self)) + [0x0A])
    }
}

/// The repository's own event log (`.jetbackup-events.log`): one JSON object a line with
/// `time`, `event`, `message` and `data`, appended and fsynced; a failure to log never
/// fails what it reports.
public struct RepositoryEvents: Sendable {
    let fs: any FileSystem
    let path: String
    let clock: WallClock

    public func log(_ event: String, _ message: String, _ data: [(String, JSONValue)] = []) {
        let line = JSONValue.object([
            ("time", .string(Clock.rfc3339(microseconds: clock.now()))), ("event", .string(event)),
            ("message", .string(message)), ("data", .object(data)),
        ]).serialized() + "\n"
        // A report only.
        try? EventLog.append(line, to: path, fs: fs)
    }

    public func lines() -> [String] {
        guard let b = try? fs.readAll(path) else { return [] }
        return b.split(separator: 0x0A).map { String(decoding: $0, as: UTF8.self) }
    }
}
