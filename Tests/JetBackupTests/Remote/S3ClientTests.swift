import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The S3 client against a real server (SeaweedFS, see SeaweedFS.swift): objects, ranges,
/// multipart uploads with bounded memory, listing pages, the errors of wrong credentials, a
/// missing bucket and a server that dies mid-upload.
@Suite(.enabled(if: SeaweedFS.available), .serialized) struct S3ClientTests {
    static func bytes(_ n: Int, seed: UInt8 = 7) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var x = UInt32(seed) &* 2_654_435_761 | 1
        for i in 0..<n { x ^= x << 13; x ^= x >> 17; x ^= x << 5; out[i] = UInt8(truncatingIfNeeded: x) }
        return out
    }

    @Test func objectsRoundTripWithRangesHeadAndDelete() throws {
        let s = try SeaweedFS.shared()
        let c = s.client()
        let data = Self.bytes(100_000)
        try c.put("set/a b/ሴ+x.bin", data)  // a key with a space, UTF-8 and '+' signs and reads back
        #expect(try c.get("set/a b/ሴ+x.bin") == data)
        #expect(try c.get("set/a b/ሴ+x.bin", range: 1000..<1100) == Array(data[1000..<1100]))
        #expect(try c.head("set/a b/ሴ+x.bin")?.size == 100_000)
        try c.put("empty", [])
        #expect(try c.get("empty") == [])
        #expect(try c.head("missing") == nil)
        expectJetError(.fileNotFound) { _ = try c.get("missing") }
        try c.delete("set/a b/ሴ+x.bin")
        #expect(try c.head("set/a b/ሴ+x.bin") == nil)
        try c.delete("set/a b/ሴ+x.bin")  // deleting what is gone succeeds
    }

    @Test func largeObjectGoesUpInPartsWithBoundedMemory() throws {
        let s = try SeaweedFS.shared()
        let c = s.client { $0.partSize = 5 << 20; $0.partsInFlight = 2 }
        let data = Self.bytes(5 << 20 * 3 + 1234)
        let up = c.upload("big/object")
        // Odd-sized writes, as a pipeline hands them over.
        var at = 0
        while at < data.count {
            let n = min(1_000_007, data.count - at)
            try data[at..<(at + n)].withUnsafeBytes { try up.write($0) }
            at += n
        }
        try up.finish()
        #expect(up.peakBuffers >= 1 && up.peakBuffers <= 2, "parts alive at once: \(up.peakBuffers)")
        #expect(try c.get("big/object") == data)
        #expect(try c.incompleteUploads(prefix: "big/").isEmpty)
        // Under one part: a single PUT.
        let small = c.upload("big/small")
        try small.write(Self.bytes(1000))
        try small.finish()
        #expect(try c.get("big/small") == Self.bytes(1000))
    }

    @Test func abortedUploadLeavesNoPartsAndNoObject() throws {
        let s = try SeaweedFS.shared()
        let c = s.client { $0.partSize = 5 << 20 }
        let up = c.upload("gone/object")
        try up.write(Self.bytes(5 << 20 * 3 + 5))
        #expect(try c.incompleteUploads(prefix: "gone/").count == 1)
        try up.abort()
        #expect(try c.incompleteUploads(prefix: "gone/").isEmpty)
        #expect(try c.head("gone/object") == nil)
        // Dropped without finish: the same.
        do {
            let dropped = c.upload("gone/dropped")
            try dropped.write(Self.bytes(5 << 20 * 2))
        }
        #expect(try c.incompleteUploads(prefix: "gone/").isEmpty)
    }

    @Test func listingFollowsPagesPastOneThousandObjects() throws {
        let s = try SeaweedFS.shared()
        let c = s.client()
        let n = 1_050
        let failures = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            for i in stride(from: w, to: n, by: 4) where (try? c.put(String(format: "many/k%05d", i), [UInt8(i & 255)])) == nil {
                failures.withLock { $0 += 1 }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        let all = try c.list(prefix: "many/")
        #expect(all.count == n)
        #expect(all.map(\.key) == (0..<n).map { String(format: "many/k%05d", $0) })
        #expect(try c.list(prefix: "many/", pageSize: 100).count == n)
        #expect(try c.list(prefix: "none/").isEmpty)
    }

    @Test func wrongSecretIsPermissionDeniedAndNeverShowsTheSecret() throws {
        let s = try SeaweedFS.shared()
        let c = S3Client(config: s.config(secret: "not-the-secret-4242"), bucket: s.bucket)
        do {
            try c.put("x", [1, 2, 3])
            Issue.record("put with a wrong secret succeeded")
        } catch let e as JetError {
            #expect(e.code == .permissionDenied)
            #expect(!e.message.contains("not-the-secret-4242") && !e.message.contains(SeaweedFS.secretKey), "\(e.message)")
        }
        expectJetError(.permissionDenied) { _ = try c.list(prefix: "") }
    }

    @Test func missingBucketIsInvalidPath() throws {
        let s = try SeaweedFS.shared()
        let c = s.client(bucket: "no-such-bucket")
        // (SeaweedFS creates a missing bucket on a PUT by an admin key, so reads show the error.)
        expectJetError(.invalidPath) { _ = try c.list(prefix: "") }
        expectJetError(.invalidPath) { _ = try c.get("x") }
    }

    @Test func serverKilledMidUploadFailsCleanlyAndTheUploadCanBeAborted() throws {
        let s = try SeaweedFS()
        let c = s.client { $0.partSize = 5 << 20 }
        let up = c.upload("killed/object")
        try up.write(Self.bytes(5 << 20 * 2))
        s.kill()
        let start = Date()
        do {
            try up.write(Self.bytes(5 << 20 * 4))
            try up.finish()
            Issue.record("upload to a killed server succeeded")
        } catch let e as JetError {
            #expect(e.code == .diskIO, "\(e)")
        }
        #expect(Date().timeIntervalSince(start) < 10, "retries took \(Date().timeIntervalSince(start)) s")
        // Back up: the object was never created, and what the dead server kept of the upload is
        // found and aborted by the next run.
        try s.start()
        #expect(try c.head("killed/object") == nil)
        try c.abortIncompleteUploads(prefix: "killed/")
        #expect(try c.incompleteUploads(prefix: "killed/").isEmpty)
    }

    @Test func aStalledServerIsWaitedForWithinTheTimeoutAndRetriedPastIt() throws {
        let s = try SeaweedFS()
        let data = Self.bytes(1 << 20)
        try s.client().put("slow/object", data)
        let pid = try #require(s.pid)
        // Stalled 1 s, under the 3 s no-progress limit: one attempt that waits.
        let patient = s.client { $0.timeouts.lowSpeedSeconds = 3; $0.attempts = 1 }
        kill(pid, SIGSTOP)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.0) { kill(pid, SIGCONT) }
        var start = Date()
        #expect(try patient.get("slow/object") == data)
        #expect(Date().timeIntervalSince(start) >= 0.9)
        // Stalled 2.5 s past a 1 s limit: the first attempt is given up and a retry gets it.
        let retrying = s.client { $0.timeouts.lowSpeedSeconds = 1; $0.attempts = 6; $0.backoffMillis = 300 }
        kill(pid, SIGSTOP)
        DispatchQueue.global().asyncAfter(deadline: .now() + 2.5) { kill(pid, SIGCONT) }
        start = Date()
        #expect(try retrying.get("slow/object") == data)
        #expect(Date().timeIntervalSince(start) >= 2.4)
        // A stall well past the limit with a single attempt fails as an I/O error (libcurl checks
        // the speed once a second, so a stall only just past 1 s may go unnoticed: give it 3 s).
        kill(pid, SIGSTOP)
        let stalled = Date()
        DispatchQueue.global().asyncAfter(deadline: .now() + 3.0) { kill(pid, SIGCONT) }
        expectJetError(.diskIO) { _ = try s.client { $0.timeouts.lowSpeedSeconds = 1; $0.attempts = 1 }.get("slow/object") }
        // The server resumes before it is stopped for good.
        let left = 3.3 - Date().timeIntervalSince(stalled)
        if left > 0 { usleep(UInt32(left * 1_000_000)) }
    }

    @Test func serverRestartedMidDownloadIsRetriedUntilItIsBack() throws {
        let s = try SeaweedFS()
        let c = s.client { $0.attempts = 10; $0.backoffMillis = 100 }
        let data = Self.bytes(4 << 20)
        try c.put("restart/object", data)
        let results = Locked<[Bool]>([])
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            defer { group.leave() }
            for i in 0..<40 {
                let r = Int64(i % 16) * 262_144
                let got = try? c.get("restart/object", range: r..<(r + 262_144))
                results.withLock { $0.append(got.map { $0 == Array(data[Int(r)..<Int(r + 262_144)]) } ?? false) }
                usleep(20_000)
            }
        }
        usleep(150_000)
        s.kill()
        usleep(300_000)
        try s.start()
        group.wait()
        let all = results.withLock { $0 }
        #expect(all.count == 40 && all.allSatisfy { $0 }, "reads: \(all)")
    }

    @Test func exactlyOneOfConcurrentWritersCreatesALockObject() throws {
        let s = try SeaweedFS.shared()
        let c = s.client()
        let winners = Locked<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { w in
            if (try? c.putIfAbsent("lock/one", Array("run \(w)".utf8))) == true { winners.withLock { $0.append(w) } }
        }
        let won = winners.withLock { $0 }
        #expect(won.count == 1, "winners: \(won)")
        #expect(try c.get("lock/one") == Array("run \(won.first ?? -1)".utf8))
        #expect(try c.putIfAbsent("lock/one", Array("late".utf8)) == false)
        try c.delete("lock/one")
        #expect(try c.putIfAbsent("lock/one", Array("after".utf8)) == true)
    }

    @Test func expectedSizeGrowsPartsToStayUnderTenThousand() throws {
        let s = try SeaweedFS.shared()
        let c = s.client { $0.partSize = 5 << 20 }
        let up = c.upload("sized/x", expectedSize: 1 << 40)
        #expect(up.partSize == Int((Int64(1) << 40 + 9_999) / 10_000))
        try up.abort()
        #expect(c.upload("sized/y", expectedSize: 1000).partSize == 5 << 20)
    }

    @Test func aChangedByteInTheBucketIsCaughtByTheCallersChecksum() throws {
        let s = try SeaweedFS.shared()
        let c = s.client()
        var data = Self.bytes(5000)
        try c.put("sum/file", data)
        let recorded = data.withUnsafeBytes { SHA256Hasher.hex($0) }
        data[2500] ^= 0x01
        try c.put("sum/file", data)  // someone changes the stored object
        let read = try c.get("sum/file")
        #expect(read.withUnsafeBytes { SHA256Hasher.hex($0) } != recorded)
    }

    @Test func configComesFromTheAWSVariables() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SECRETVALUE", "AWS_SESSION_TOKEN": "TOKENVALUE",
                   "AWS_DEFAULT_REGION": "eu-west-3", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/"]
        let c = try S3Config.fromEnvironment(env)
        #expect(c.endpoint == "http://127.0.0.1:9000" && c.region == "eu-west-3" && c.addressing == .path)
        #expect(c.base(bucket: "b") == ("http://127.0.0.1:9000/b", "127.0.0.1:9000"))
        #expect(!"\(c)".contains("SECRETVALUE") && !"\(c)".contains("TOKENVALUE"))
        var aws = env
        aws["AWS_ENDPOINT_URL"] = nil
        aws["AWS_REGION"] = "us-west-2"
        let v = try S3Config.fromEnvironment(aws)
        #expect(v.addressing == .virtual && v.region == "us-west-2")
        #expect(v.base(bucket: "b") == ("https://b.s3.us-west-2.amazonaws.com", "b.s3.us-west-2.amazonaws.com"))
        #expect(try S3Config.fromEnvironment(env, addressing: .virtual).addressing == .virtual)
        expectJetError(.permissionDenied) { _ = try S3Config.fromEnvironment(["AWS_ACCESS_KEY_ID": "AK"]) }
        let loc = try S3Location(parsing: "s3://my-bucket//sets/daily/")
        #expect(loc.bucket == "my-bucket" && loc.prefix == "sets/daily" && loc.key("MANIFEST.json") == "sets/daily/MANIFEST.json")
        expectJetError(.invalidPath) { _ = try S3Location(parsing: "s3://Bad_Bucket/x") }
    }
}

/// A value shared by test threads.
final class Locked<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func withLock<R>(_ body: (inout T) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
