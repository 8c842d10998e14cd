import CCurl
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// One HTTP exchange through libcurl (easy interface, one handle per call so calls on
/// different threads share nothing). The body is sent from memory and the response is kept
/// in memory: S3 requests carry at most one part, and responses are small except ranged GETs
/// the caller sized.
struct HTTPResponse {
    let status: Int
    let headers: [String: String]  // names lower-cased
    let body: [UInt8]
}

/// A transfer that did not produce an HTTP status: refused, reset, timed out, name unknown.
struct TransportError: Error, CustomStringConvertible {
    let code: Int
    let text: String
    var description: String { "\(text) (curl \(code))" }
}

enum CurlTransport {
    /// libcurl is loaded at the first exchange (`curl_api.h`); nil once it is, else the
    /// error every exchange then throws at once (retrying would not help).
    private static let startFailure: JetError? = {
        if let why = jb_curl_load() {
            return JetError(.fileNotFound, "S3 repositories need libcurl, which could not be loaded (\(String(cString: why))); "
                            + "install Debian's libcurl4 package")
        }
        return jb_curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK ? nil : JetError(.diskIO, "libcurl could not start")
    }()

    struct Timeouts: Sendable {
        var connectMillis = 10_000
        /// A transfer slower than `lowSpeedBytes` per second for `lowSpeedSeconds` is given up
        /// (then retried): a stalled server, not a slow one.
        var lowSpeedBytes = 1
        var lowSpeedSeconds = 30
    }

    private final class Exchange {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
    }

    static func perform(method: String, url: String, headers: [(String, String)], body: [UInt8],
                        timeouts: Timeouts) throws -> HTTPResponse {
        if let failure = startFailure { throw failure }
        guard let h = jb_curl_easy_init() else { throw TransportError(code: -1, text: "libcurl could not start a transfer") }
        defer { jb_curl_easy_cleanup(h) }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        // No "Expect: 100-continue" round trip, and no content type curl would invent for a body.
        var lines = headers.map { "\($0.0): \($0.1)" } + ["Expect:"]
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { lines.append("Content-Type:") }
        for l in lines { list = jb_curl_slist_append(list, l) }
        defer { jb_curl_slist_free_all(list) }
        let ex = Exchange()
        let box = Unmanaged.passRetained(ex)
        defer { box.release() }
        var errbuf = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let rc: CURLcode = url.withCString { u in
            method.withCString { m in
                body.withUnsafeBytes { b in
                    errbuf.withUnsafeMutableBufferPointer { e in
                        _ = jb_curl_set_string(h, CURLOPT_URL, u)
                        _ = jb_curl_set_string(h, CURLOPT_CUSTOMREQUEST, m)
                        _ = jb_curl_set_slist(h, CURLOPT_HTTPHEADER, list)
                        _ = jb_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
                        _ = jb_curl_set_ptr(h, CURLOPT_ERRORBUFFER, e.baseAddress)
                        _ = jb_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, timeouts.connectMillis)
                        _ = jb_curl_set_long(h, CURLOPT_LOW_SPEED_LIMIT, timeouts.lowSpeedBytes)
                        _ = jb_curl_set_long(h, CURLOPT_LOW_SPEED_TIME, timeouts.lowSpeedSeconds)
                        if method == "HEAD" { _ = jb_curl_set_long(h, CURLOPT_NOBODY, 1) }
                        if method == "PUT" || method == "POST" {
                            _ = jb_curl_set_off(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(b.count))
                            // A zero-length body still needs a non-null pointer, or curl reads stdin.
                            _ = jb_curl_set_ptr(h, CURLOPT_POSTFIELDS, b.baseAddress ?? UnsafeRawPointer(e.baseAddress!))
                        }
                        _ = jb_curl_set_ptr(h, CURLOPT_WRITEDATA, box.toOpaque())
                        _ = jb_curl_set_cb(h, CURLOPT_WRITEFUNCTION) { p, size, n, ud in
                            guard let p, let ud else { return 0 }
                            let ex = Unmanaged<Exchange>.fromOpaque(ud).takeUnretainedValue()
                            ex.body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: size * n))
                            return size * n
                        }
                        _ = jb_curl_set_ptr(h, CURLOPT_HEADERDATA, box.toOpaque())
                        _ = jb_curl_set_cb(h, CURLOPT_HEADERFUNCTION) { p, size, n, ud in
                            guard let p, let ud else { return 0 }
                            let ex = Unmanaged<Exchange>.fromOpaque(ud).takeUnretainedValue()
                            let line = String(decoding: UnsafeRawBufferPointer(start: p, count: size * n), as: UTF8.self)
                            if let colon = line.firstIndex(of: ":") {
                                let name = line[..<colon].lowercased()
                                ex.headers[name] = line[line.index(after: colon)...].trimmed
                            } else if line.hasPrefix("HTTP/") {
                                ex.headers = [:]  // a new response (after a redirect or 100)
                            }
                            return size * n
                        }
                        return jb_curl_easy_perform(h)
                    }
                }
            }
        }
        guard rc == CURLE_OK else {
            let detail = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let text = detail.isEmpty ? String(cString: jb_curl_easy_strerror(rc)) : detail
            throw TransportError(code: Int(rc.rawValue), text: text)
        }
        var status = 0
        _ = jb_curl_get_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: ex.headers, body: ex.body)
    }
}
