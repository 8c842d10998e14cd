#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

/// Credentials for an S3 store. `description` never shows the secret or the token, so an
/// interpolated value cannot leak them into a message, an event or a log.
public struct S3Credentials: Sendable, CustomStringConvertible {
    public let accessKeyID: String
    let secretAccessKey: String
    let sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(\(accessKeyID), secret hidden)" }
}

/// AWS Signature Version 4 (header form), as S3 wants it: the path is percent-encoded once and
/// never normalised (`a//b` and `a/b` are different keys), the payload hash is signed as
/// `x-amz-content-sha256`. Checked against the AWS test suite in Fixtures/sigv4.
struct SigV4Signer: Sendable {
    let credentials: S3Credentials
    let region: String
    let service: String

    struct Signed {
        let canonicalRequest: String
        let stringToSign: String
        let authorization: String
        /// The headers to send: the given ones plus x-amz-date, the token and Authorization.
        let headers: [(String, String)]
    }

    /// `path` and `query` are raw (not percent-encoded); `headers` must include Host.
    func sign(method: String, path: String, query: [(String, String)], headers: [(String, String)],
              payloadHash: String, date: Date) -> Signed {
        let stamp = Self.timestamp(date)
        var all = headers
        all.append(("X-Amz-Date", stamp))
        if let t = credentials.sessionToken { all.append(("X-Amz-Security-Token", t)) }
        // Lower-case names, values trimmed with inner runs of spaces folded, repeated names joined
        // with commas in the order given, names sorted.
        var merged: [String: [String]] = [:]
        var order: [String] = []
        for (name, value) in all {
            let n = name.lowercased()
            if merged[n] == nil { order.append(n); merged[n] = [] }
            merged[n]?.append(Self.trim(value))
        }
        let names = order.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]?.joined(separator: ",") ?? "")\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [method, Self.encodePath(path), Self.canonicalQuery(query), canonicalHeaders, signedHeaders,
                                payloadHash].joined(separator: "\n")
        let day = String(stamp.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", stamp, scope, Digest.hex(Digest.sha256(Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
        var key = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = Digest.hmacSHA256(key: key, Array(part.utf8)) }
        let signature = Digest.hex(Digest.hmacSHA256(key: key, Array(stringToSign.utf8)))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
        all.append(("Authorization", authorization))
        return Signed(canonicalRequest: canonicalRequest, stringToSign: stringToSign, authorization: authorization, headers: all)
    }

    /// RFC 3986 unreserved characters stay; every other byte of the UTF-8 is %XX (upper case).
    static func encode(_ s: String, keepSlash: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(b))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += Text.format("%%%02X", b)
            }
        }
        return out
    }

    static func encodePath(_ path: String) -> String { path.isEmpty ? "/" : encode(path, keepSlash: true) }

    /// Encoded pairs sorted by name then value (byte order of the encoded form).
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (encode($0.0, keepSlash: false), encode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    static func trim(_ v: String) -> String {
        v.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        return Text.format("%04d%02d%02dT%02d%02d%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }
}
