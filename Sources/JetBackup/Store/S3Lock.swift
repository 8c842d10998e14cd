#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import JetStore

/// A lock in object storage: an object created only if absent (`S3Client.putIfAbsent`), so of
/// two runs exactly one creates it; `release` deletes it. It holds one line naming the holder:
/// `pid P on host H since TIME: OWNER [run ID]`. A holder that dies leaves the object behind,
/// so a lock is taken over when its holder ran on this host and its process is gone; a lock of
/// another host stays until that run ends or someone deletes the object (README "Remote storage").
final class S3Lock: FileLock, @unchecked Sendable {
    let client: S3Client
    let key: String
    let body: [UInt8]
    let released: @Sendable () -> Void

    private init(client: S3Client, key: String, body: [UInt8], released: @escaping @Sendable () -> Void) {
        self.client = client
        self.key = key
        self.body = body
        self.released = released
    }

    static func acquire(client: S3Client, key: String, path: String, owner: String,
                        released: @escaping @Sendable () -> Void = {}) throws -> S3Lock {
        let line = "pid \(getpid()) on host \(hostName) since \(Clock.rfc3339(microseconds: Clock.microsecondsSinceEpoch())): "
            + "\(owner) [run \(UUID().uuidString)]"
        let body = Array(line.utf8)
        for _ in 0..<2 {
            if try client.putIfAbsent(key, body) { return S3Lock(client: client, key: key, body: body, released: released) }
            let held = (try? client.get(key)) ?? []
            guard isStale(held) else {
                let who = String(decoding: held, as: UTF8.self)
                throw JetError(.fileAccessDenied, "\(path) is held by another process (\(who.isEmpty ? "it has just taken the lock" : who))")
            }
            try client.delete(key)
        }
        throw JetError(.fileAccessDenied, "\(path) is held by another process (it has just taken the lock)")
    }

    /// A record of a process of this host that no longer runs.
    static func isStale(_ record: [UInt8]) -> Bool {
        let words = String(decoding: record, as: UTF8.self).split(separator: " ", maxSplits: 6)
        guard words.count > 5, words[0] == "pid", let pid = Int32(words[1]), pid > 0, words[2] == "on", words[3] == "host",
              words[4] == hostName else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    static let hostName: String = {
        var b = [CChar](repeating: 0, count: 256)
        guard gethostname(&b, b.count - 1) == 0 else { return "unknown" }
        let name = String(decoding: b.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "unknown" : name.replacing(" ", with: "_")
    }()

    /// Deletes the object if it is still this run's.
    func release() {
        if (try? client.get(key)) == body { try? client.delete(key) }
        released()
    }
}
