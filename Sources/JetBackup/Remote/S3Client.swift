#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Object storage through S3's REST interface: PUT, ranged GET, HEAD, DELETE, paginated
/// list-objects-v2 and multipart uploads (`S3Upload`). Every request is signed (SigV4), retried
/// with exponential backoff on 5xx, timeouts and resets, and its failure is a `JetError`
/// (README, "Exit status and errors"): refused credentials → JET_errPermissionDenied, a missing
/// bucket → JET_errInvalidPath, a store that does not answer after the retries → JET_errDiskIO.
/// Messages name the store, bucket and key, never a credential.
public final class S3Client: Sendable {
    public let config: S3Config
    public let bucket: String
    private let signer: SigV4Signer
    private let sent = RequestCount()

    /// Requests sent (attempts included), for the tests that count them.
    var requestsSent: Int { sent.value }

    private final class RequestCount: @unchecked Sendable {
        let lock = Lock()
        var n = 0
        var value: Int { lock.withLock { n } }
        func add() { lock.withLock { n += 1 } }
    }

    public struct Object: Sendable, Equatable {
        public let key: String
        public let size: Int64
        public let etag: String
    }

    public init(config: S3Config, bucket: String) {
        self.config = config
        self.bucket = bucket
        signer = SigV4Signer(credentials: config.credentials, region: config.region, service: "s3")
    }

    // MARK: objects

    public func put(_ key: String, _ body: [UInt8]) throws {
        _ = try send("PUT", key: key, body: body, what: "upload \(key)")
    }

    /// Creates `key` only if no object has that name (`If-None-Match: *`), atomically in the
    /// store: of several writers exactly one gets true. The seam for a lock object on a store
    /// without rename or locks. `body` should be unique to the writer (a run id): a PUT whose
    /// answer was lost and was retried is recognised as the writer's own by reading it back.
    public func putIfAbsent(_ key: String, _ body: [UInt8]) throws -> Bool {
        let r = try send("PUT", key: key, headers: [("If-None-Match", "*")], body: body, what: "create \(key)", allow: [412])
        if r.status != 412 { return true }
        return (try? get(key)) == body
    }

    /// The object's bytes, or those of `range` (offsets, end exclusive).
    public func get(_ key: String, range: Range<Int64>? = nil) throws -> [UInt8] {
        var headers: [(String, String)] = []
        if let r = range {
            if r.isEmpty { return [] }
            headers.append(("Range", "bytes=\(r.lowerBound)-\(r.upperBound - 1)"))
        }
        return try send("GET", key: key, headers: headers, what: "read \(key)").body
    }

    /// Size and ETag, or nil when there is no such object.
    public func head(_ key: String) throws -> Object? {
        let r = try send("HEAD", key: key, what: "look up \(key)", allow404: true)
        if r.status == 404 { return nil }
        return Object(key: key, size: Int64(r.headers["content-length"] ?? "") ?? 0, etag: r.headers["etag"] ?? "")
    }

    /// Deleting a missing object succeeds, as in S3.
    public func delete(_ key: String) throws {
        _ = try send("DELETE", key: key, what: "delete \(key)", allow404: true)
    }

    /// Every object whose key starts with `prefix`, in key order, following continuation tokens
    /// (S3 answers at most 1,000 keys a page).
    public func list(prefix: String, pageSize: Int = 1000) throws -> [Object] {
        var out: [Object] = []
        var token: String?
        repeat {
            var q = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize))]
            if let t = token { q.append(("continuation-token", t)) }
            let r = try send("GET", key: nil, query: q, what: "list \(prefix)")
            let xml = Substring(String(decoding: r.body, as: UTF8.self))
            for c in S3XML.blocks("Contents", in: xml) {
                guard let key = S3XML.first("Key", in: c) else { continue }
                out.append(Object(key: key, size: Int64(S3XML.first("Size", in: c) ?? "") ?? 0, etag: S3XML.first("ETag", in: c) ?? ""))
            }
            token = S3XML.first("IsTruncated", in: xml) == "true" ? S3XML.first("NextContinuationToken", in: xml) : nil
        } while token != nil
        return out
    }

    /// One level of the key space under `prefix`: the objects directly there and the common
    /// prefixes (up to and including the next `delimiter`) of the keys below, across pages.
    public func listLevel(prefix: String, delimiter: String = "/") throws -> (objects: [Object], prefixes: [String]) {
        var objects: [Object] = []
        var prefixes: [String] = []
        var token: String?
        repeat {
            var q = [("list-type", "2"), ("prefix", prefix), ("delimiter", delimiter), ("max-keys", "1000")]
            if let t = token { q.append(("continuation-token", t)) }
            let r = try send("GET", key: nil, query: q, what: "list \(prefix)")
            let xml = Substring(String(decoding: r.body, as: UTF8.self))
            for c in S3XML.blocks("Contents", in: xml) {
                guard let key = S3XML.first("Key", in: c) else { continue }
                objects.append(Object(key: key, size: Int64(S3XML.first("Size", in: c) ?? "") ?? 0, etag: S3XML.first("ETag", in: c) ?? ""))
            }
            for c in S3XML.blocks("CommonPrefixes", in: xml) {
                if let p = S3XML.first("Prefix", in: c) { prefixes.append(p) }
            }
            token = S3XML.first("IsTruncated", in: xml) == "true" ? S3XML.first("NextContinuationToken", in: xml) : nil
        } while token != nil
        return (objects, prefixes)
    }

    /// True when some object's key starts with `prefix` (one request of one key).
    public func hasObjects(prefix: String) throws -> Bool {
        let r = try send("GET", key: nil, query: [("list-type", "2"), ("prefix", prefix), ("max-keys", "1")], what: "list \(prefix)")
        return !S3XML.blocks("Contents", in: Substring(String(decoding: r.body, as: UTF8.self))).isEmpty
    }

    /// Multipart uploads under `prefix` that were started and never completed or aborted.
    public func incompleteUploads(prefix: String) throws -> [(key: String, uploadID: String)] {
        let r = try send("GET", key: nil, query: [("uploads", ""), ("prefix", prefix)], what: "list uploads under \(prefix)")
        return S3XML.blocks("Upload", in: Substring(String(decoding: r.body, as: UTF8.self))).compactMap { u in
            guard let k = S3XML.first("Key", in: u), let id = S3XML.first("UploadId", in: u) else { return nil }
            return (k, id)
        }
    }

    /// Aborts every unfinished multipart upload under `prefix` (left by a run that was killed or
    /// lost the store mid-upload) and returns how many there were; the parts are freed.
    @discardableResult
    public func abortIncompleteUploads(prefix: String) throws -> Int {
        let open = try incompleteUploads(prefix: prefix)
        for u in open {
            _ = try send("DELETE", key: u.key, query: [("uploadId", u.uploadID)], what: "abort the upload of \(u.key)", allow404: true)
        }
        return open.count
    }

    /// Starts a streaming upload of `key`; see `S3Upload`. With `expectedSize` (an image's
    /// size, known before it is read) the part size grows past `config.partSize` when the object
    /// would otherwise need more than S3's 10,000 parts.
    public func upload(_ key: String, expectedSize: Int64? = nil) -> S3Upload {
        var part = config.partSize
        if let n = expectedSize { part = max(part, Int((n + S3Upload.maxParts - 1) / S3Upload.maxParts)) }
        return S3Upload(client: self, key: key, partSize: part)
    }

    // MARK: requests

    /// One signed request with retries. `key` nil addresses the bucket itself.
    func send(_ method: String, key: String?, query: [(String, String)] = [], headers: [(String, String)] = [],
              body: [UInt8] = [], what: String, allow404: Bool = false, allow: Set<Int> = []) throws -> HTTPResponse {
        let (base, host) = config.base(bucket: bucket)
        let basePath = config.addressing == .path ? "/\(bucket)" : ""
        let path = basePath + "/" + (key ?? "")
        let encodedPath = SigV4Signer.encodePath(path)
        let url = (base.hasSuffix(basePath) ? String(base.dropLast(basePath.count)) : base) + encodedPath
            + (query.isEmpty ? "" : "?" + SigV4Signer.canonicalQuery(query))
        let payloadHash = body.isEmpty ? Digest.emptySHA256 : body.withUnsafeBytes { SHA256Hasher.hex($0) }
        var attempt = 0
        var lastProblem = ""
        while true {
            attempt += 1
            sent.add()
            let signed = signer.sign(method: method, path: path, query: query,
                                     headers: [("Host", host), ("x-amz-content-sha256", payloadHash)] + headers,
                                     payloadHash: payloadHash, date: Date())
            // Host is set by curl from the URL; sending it twice would confuse some servers.
            let sendHeaders = signed.headers.filter { $0.0 != "Host" }
            do {
                let r = try CurlTransport.perform(method: method, url: url, headers: sendHeaders, body: body, timeouts: config.timeouts)
                if (200..<300).contains(r.status) || allow.contains(r.status) || (allow404 && r.status == 404 && !isNoSuchBucket(r)) {
                    return r
                }
                if r.status >= 500 || r.status == 429 {
                    lastProblem = "HTTP \(r.status) \(errorCode(r) ?? "")"
                } else {
                    throw mapError(r, what: what)
                }
            } catch let t as TransportError {
                lastProblem = t.description
            }
            if attempt >= config.attempts {
                throw JetError(.diskIO, "S3 store \(config.storeName) could not \(what) in bucket \(bucket) after \(attempt) attempts "
                               + "(\(lastProblem)); check the network and the store, then run again")
            }
            let delay = config.backoffMillis << min(attempt - 1, 6)
            usleep(UInt32(delay / 2 + Int.random(in: 0...max(1, delay / 2))) * 1000)
        }
    }

    private func errorCode(_ r: HTTPResponse) -> String? {
        S3XML.first("Code", in: Substring(String(decoding: r.body, as: UTF8.self)))
    }

    private func isNoSuchBucket(_ r: HTTPResponse) -> Bool {
        // A HEAD answer has no body: a 404 on HEAD is "no such object" unless S3 said otherwise.
        errorCode(r) == "NoSuchBucket"
    }

    private func mapError(_ r: HTTPResponse, what: String) -> JetError {
        let code = errorCode(r)
        let said = code.map { " (\($0))" } ?? ""
        switch (r.status, code) {
        case (403, _), (401, _):
            return JetError(.permissionDenied, "S3 store \(config.storeName) refused to \(what) in bucket \(bucket)\(said): "
                            + "check the access key, the secret and the key's rights on the bucket")
        case (404, "NoSuchBucket"):
            return JetError(.invalidPath, "bucket \(bucket) does not exist at \(config.storeName); create it first")
        case (404, _):
            return JetError(.fileNotFound, "S3 store \(config.storeName) has no object to \(what) in bucket \(bucket)\(said)")
        default:
            return JetError(.diskIO, "S3 store \(config.storeName) failed to \(what) in bucket \(bucket): HTTP \(r.status)\(said)")
        }
    }
}
