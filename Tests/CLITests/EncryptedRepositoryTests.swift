import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// Encrypted repositories, local and in object storage (SeaweedFS): every stored file of a set
/// is ciphertext, a backup restores to the source's digest with the key file, and without it,
/// with a wrong one, or with a byte of ciphertext changed, verify and restore fail and write
/// nothing; `repo change-key` rewraps the key and changes no stored file.
@Suite(.serialized) struct EncryptedRepositoryTests {
    /// The repository's stored files, read and written around the binary.
    struct Store {
        let repo: String
        let names: () throws -> [String]
        let read: (String) throws -> [UInt8]
        let write: (String, [UInt8]) throws -> Void
    }

    static func store(_ kind: String, _ e: S3RepositoryTests.Env) throws -> Store {
        if kind == "local" {
            let root = e.t.path("repo")
            return Store(repo: root, names: {
                (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
                    var d: ObjCBool = false
                    return FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &d) && !d.boolValue
                }
            }, read: { [UInt8](FileManager.default.contents(atPath: root + "/" + $0) ?? Data()) },
            write: { try Data($1).write(to: URL(fileURLWithPath: root + "/" + $0)) })
        }
        let c = try e.weed.client()
        return Store(repo: e.repo, names: { try e.objects().filter { $0.hasPrefix("repo/") }.map { String($0.dropFirst(5)) } },
                     read: { try c.get(e.key("repo/" + $0)) }, write: { try c.put(e.key("repo/" + $0), $1) })
    }

    static var kinds: [String] { SeaweedFS.available ? ["local", "s3"] : ["local"] }

    @Test(arguments: kinds) func anEncryptedRepositoryRestoresWithItsKeyAndRefusesWithoutItOrWithAnother(kind: String) throws {
        let e = try S3RepositoryTests.Env(s3: kind == "s3")
        let s = try Self.store(kind, e)
        let key = e.t.path("key"), wrong = e.t.path("wrong"), next = e.t.path("next")
        try "correct horse battery staple\n".write(toFile: key, atomically: true, encoding: .utf8)
        try "incorrect horse\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        try "a new passphrase\n".write(toFile: next, atomically: true, encoding: .utf8)
        try e.run(["repo", "init", s.repo, "--encrypt"], expect: 64)
        try e.run(["repo", "init", s.repo, "--encrypt", "--key-file", key], expect: 0)
        try e.load(600, seed: 1)
        let label = json(try e.run(["backup", "--repo", s.repo, "--json", "-i", e.inst, "--key-file", key], expect: 0).stdout)["label"]
            as? String ?? "?"
        try e.load(300, seed: 2)
        // JETBACKUP_KEY_FILE stands for --key-file.
        try e.run(["backup", "--repo", s.repo, "--incremental", "--compress-logs", "-i", e.inst], expect: 0, env: ["JETBACKUP_KEY_FILE": key])
        // And one not compressed: the zero pages at a generation's end, a hole in a plain set,
        // are written (encrypted) here.
        try e.load(200, seed: 3)
        try e.run(["backup", "--repo", s.repo, "--incremental", "-i", e.inst, "--key-file", key], expect: 0)
        let digest = try e.digest()
        #expect(try e.restoreDigest(["--repo", s.repo, "--key-file", key]) == digest)
        try e.run(["verify", "--repo", s.repo, "--key-file", key], expect: 0)
        // Every stored file of the set is ciphertext; the marker holds only the wrapped key.
        let files = try s.names().filter { $0.hasPrefix(label + "/") && !$0.hasSuffix(BackupSetLayout.lock) }
        #expect(files.count >= 5, "\(files)")
        for f in files {
            #expect(Array(try s.read(f).prefix(8)) == Array("JBCRYPT1".utf8), "\(f) is not encrypted")
        }
        let manifest = String(decoding: try s.read(label + "/" + BackupSetLayout.manifest), as: UTF8.self)
        #expect(!manifest.contains("logSignature") && !manifest.contains("app.edb"))
        // Without the key, or with another passphrase: 77, nothing read, TARGET not created.
        let target = e.t.path("target")
        for extra in [[], ["--key-file", wrong]] {
            for args in [["list", s.repo], ["verify", "--repo", s.repo], ["show", "--repo", s.repo],
                         ["restore", "--repo", s.repo, "--to", target], ["backup", "--repo", s.repo, "-i", e.inst],
                         ["status", s.repo, "--max-age", "1h"], ["expire", s.repo, "--keep-full", "1"]] {
                let r = try e.run(args + extra)
                #expect(r.status == 77, "\(args + extra): \(r.status) \(r.stderr)")
                #expect(r.stderr.contains("JET_errPermissionDenied"))
            }
        }
        #expect(!FileManager.default.fileExists(atPath: target))
        // A set read as a plain directory (no key) is a damaged manifest, never a backup.
        if kind == "local" { try e.run(["verify", s.repo + "/" + label], expect: 65) }
        // One ciphertext byte changed: authentication fails (65), nothing is written.
        guard let log = files.first(where: { $0.hasSuffix(".log.zst") }) else { Issue.record("no compressed log in \(files)"); return }
        let original = try s.read(log)
        var changed = original
        changed[changed.count - 20] ^= 1
        try s.write(log, changed)
        for args in [["verify", "--repo", s.repo, "--set", label], ["restore", "--repo", s.repo, "--set", label, "--to", target]] {
            let r = try e.run(args + ["--key-file", key])
            #expect(r.status == 65 && r.stderr.contains("authentication"), "\(args): \(r.status) \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: target))
        // Cut at the end: the same.
        try s.write(log, Array(original.dropLast(16)))
        try e.run(["verify", "--repo", s.repo, "--set", label, "--key-file", key], expect: 65)
        try s.write(log, original)
        try e.run(["verify", "--repo", s.repo, "--set", label, "--key-file", key], expect: 0)
        // change-key: only the marker changes; the old passphrase no longer opens the key.
        let before = try files.map { try s.read($0) }
        try e.run(["repo", "change-key", s.repo, "--key-file", wrong, "--new-key-file", next], expect: 77)
        try e.run(["repo", "change-key", s.repo, "--key-file", key, "--new-key-file", next], expect: 0)
        #expect(try files.map { try s.read($0) } == before)
        try e.run(["list", s.repo, "--key-file", key], expect: 77)
        #expect(try e.restoreDigest(["--repo", s.repo, "--key-file", next]) == digest)
    }

    @Test func aKeyFileForAPlainRepositoryOrABackupDirectoryIsRefused() throws {
        let e = try S3RepositoryTests.Env(s3: false)
        let root = e.t.path("plain")
        let key = e.t.path("key")
        try "pass\n".write(toFile: key, atomically: true, encoding: .utf8)
        try e.run(["repo", "init", root], expect: 0)
        try e.load(100, seed: 1)
        try e.run(["backup", "--repo", root, "-i", e.inst], expect: 0)
        try e.run(["list", root, "--key-file", key], expect: 64)
        // $JETBACKUP_KEY_FILE set for other repositories does not get in the way of a plain one.
        try e.run(["list", root], expect: 0, env: ["JETBACKUP_KEY_FILE": key])
        try e.run(["list", root], expect: 0, env: ["JETBACKUP_KEY_FILE": e.t.path("no-such-key-file")])
        try e.run(["repo", "init", e.t.path("plain2")], expect: 0, env: ["JETBACKUP_KEY_FILE": e.t.path("no-such-key-file")])
        try e.run(["backup", e.t.path("dir"), "--key-file", key, "-i", e.inst], expect: 64)
        let label = try e.run(["list", root, "--json"], expect: 0).stdout
        let set = (json(label)["sets"] as? [[String: Any]])?.first?["path"] as? String ?? "?"
        try e.run(["verify", set, "--key-file", key], expect: 64)
        try e.run(["repo", "change-key", root, "--key-file", key, "--new-key-file", key], expect: 64)
    }
}
