import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// A streaming upload of one object: bytes go in by `write` as the backup pipeline produces
/// them, nothing is staged on local disk. Up to one part is buffered; a full part goes out as a
/// multipart part on a worker while the next fills, with at most `partsInFlight` parts
/// uploading, so memory stays under `partSize × (partsInFlight + 1)` whatever the object's
/// size. An object smaller than one part is one PUT. `finish` completes the upload; any failure
/// (a part's, or the caller's: `abort`, or the upload dropped unfinished) aborts the multipart
/// upload so the store keeps no parts, and the object is not created.
public final class S3Upload: @unchecked Sendable {
    let client: S3Client
    public let key: String
    let partSize: Int
    private var buffer: [UInt8] = []
    private var uploadID: String?
    private var nextPart = 1
    private var total: Int64 = 0
    private var done = false

    /// What the part workers share with the upload, under its lock. The workers hold this and
    /// not the upload, so dropping an unfinished upload aborts it at once.
    private final class Parts: @unchecked Sendable {
        let lock = Lock()
        var etags: [Int: String] = [:]
        var failure: Error?
        var live = 0
        var peak = 0
    }
    private let parts = Parts()
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()
    /// Largest number of part buffers in flight at once, for the memory bound's test.
    var peakBuffers: Int { parts.lock.withLock { parts.peak } }

    /// Most bytes of part buffers one upload holds (the issue's bound for the backup pipeline).
    static let memoryBudget = 128 << 20

    /// S3's limit on the parts of one object.
    static let maxParts: Int64 = 10_000

    init(client: S3Client, key: String, partSize: Int) {
        self.client = client
        self.key = key
        self.partSize = max(1, partSize)
        // Fewer parts in flight when parts are large, so the buffers stay within `memoryBudget`
        // (objects up to 10,000 × 64 MiB; beyond that one part in flight and one filling).
        let fit = Self.memoryBudget / self.partSize - 1
        slots = DispatchSemaphore(value: max(1, min(4, client.config.partsInFlight, fit)))
        buffer.reserveCapacity(partSize)
    }

    deinit {
        if !done { try? abort() }
    }

    public var bytesWritten: Int64 { total }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        precondition(!done, "write after finish or abort")
        try throwIfFailed()
        var rest = bytes
        while !rest.isEmpty {
            let n = min(rest.count, partSize - buffer.count)
            buffer.append(contentsOf: rest.prefix(n))
            rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
            total += Int64(n)
            if buffer.count == partSize { try sendPart() }
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Completes the object; after this it exists with every byte written. On failure the
    /// multipart upload is aborted and the error thrown.
    public func finish() throws {
        precondition(!done, "finish after finish or abort")
        do {
            if uploadID == nil {
                try client.put(key, buffer)
                buffer = []
                done = true
                return
            }
            if !buffer.isEmpty { try sendPart() }
            group.wait()
            try throwIfFailed()
            let sent = parts.lock.withLock { parts.etags.sorted { $0.key < $1.key } }
            var xml = "<CompleteMultipartUpload>"
            for (n, e) in sent { xml += "<Part><PartNumber>\(n)</PartNumber><ETag>\(S3XML.escape(e))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let r = try client.send("POST", key: key, query: [("uploadId", uploadID ?? "")], body: Array(xml.utf8),
                                    what: "complete the upload of \(key)")
            // S3 may answer 200 and put the failure in the body.
            let text = Substring(String(decoding: r.body, as: UTF8.self))
            if text.contains("<Error>") {
                throw JetError(.diskIO, "S3 store \(client.config.storeName) did not complete the upload of \(key) in bucket "
                               + "\(client.bucket) (\(S3XML.first("Code", in: text) ?? "unknown error"))")
            }
            done = true
        } catch {
            try? abort()
            throw error
        }
    }

    /// Gives the upload up: waits for parts in flight, then asks the store to drop the parts.
    public func abort() throws {
        if done { return }
        done = true
        buffer = []
        group.wait()
        if let id = uploadID {
            _ = try client.send("DELETE", key: key, query: [("uploadId", id)], what: "abort the upload of \(key)", allow404: true)
        }
    }

    private func throwIfFailed() throws {
        if let e = parts.lock.withLock({ parts.failure }) { throw e }
    }

    private func sendPart() throws {
        if uploadID == nil {
            let r = try client.send("POST", key: key, query: [("uploads", "")], what: "start the upload of \(key)")
            guard let id = S3XML.first("UploadId", in: Substring(String(decoding: r.body, as: UTF8.self))) else {
                throw JetError(.diskIO, "S3 store \(client.config.storeName) started no upload of \(key) (no UploadId in its answer)")
            }
            uploadID = id
        }
        let id = uploadID ?? ""
        guard Int64(nextPart) <= Self.maxParts else {
            throw JetError(.invalidParameter, "\(key) needs more than \(Self.maxParts) parts of \(partSize) bytes; "
                           + "give the upload its expected size so the parts are large enough")
        }
        let number = nextPart
        nextPart += 1
        let part = buffer
        buffer = []
        buffer.reserveCapacity(partSize)
        slots.wait()
        let (client, key, parts, slots, group) = (self.client, self.key, self.parts, self.slots, self.group)
        parts.lock.withLock { parts.live += 1; parts.peak = max(parts.peak, parts.live) }
        group.enter()
        DispatchQueue.global().async {
            defer {
                parts.lock.withLock { parts.live -= 1 }
                slots.signal()
                group.leave()
            }
            if parts.lock.withLock({ parts.failure != nil }) { return }
            do {
                let r = try client.send("PUT", key: key, query: [("partNumber", String(number)), ("uploadId", id)], body: part,
                                        what: "upload part \(number) of \(key)")
                parts.lock.withLock { parts.etags[number] = r.headers["etag"] ?? "" }
            } catch {
                parts.lock.withLock { if parts.failure == nil { parts.failure = error } }
            }
        }
        try throwIfFailed()
    }
}
