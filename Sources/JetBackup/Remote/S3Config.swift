import JetStore

/// How to reach an S3 store: endpoint, region, credentials, addressing, and the transfer's
/// shape (part size, parts in flight, retries). Built from the standard AWS variables by
/// `fromEnvironment`; `description` never shows the secret.
public struct S3Config: Sendable, CustomStringConvertible {
    public enum Addressing: String, Sendable { case path, virtual }

    /// `scheme://host[:port]`, no trailing slash. Empty means AWS itself (`https://s3.REGION.amazonaws.com`).
    public var endpoint: String
    public var region: String
    public var credentials: S3Credentials
    public var addressing: Addressing
    /// Bytes of one multipart part (S3's minimum is 5 MiB except for the last part; tests may
    /// go lower on stores that allow it). Memory of an upload is at most
    /// `partSize × (partsInFlight + 1)`, and never above 128 MiB while parts are 64 MiB or less
    /// (fewer parts go in flight when they are large).
    public var partSize = 16 << 20
    /// Parts uploaded at once (2–4).
    public var partsInFlight = 3
    /// Attempts of one request on 5xx, timeouts and resets, with exponential backoff from `backoffMillis`.
    public var attempts = 5
    public var backoffMillis = 200
    var timeouts = CurlTransport.Timeouts()

    public init(endpoint: String, region: String, credentials: S3Credentials, addressing: Addressing) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.credentials = credentials
        self.addressing = addressing
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`, else us-east-1) and `AWS_ENDPOINT_URL`. Path-style addressing when an
    /// endpoint is given (S3-compatible stores), virtual-hosted otherwise, unless `addressing` says.
    public static func fromEnvironment(_ env: [String: String], addressing: Addressing? = nil) throws -> S3Config {
        func value(_ n: String) -> String? { env[n].flatMap { $0.isEmpty ? nil : $0 } }
        guard let key = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw JetError(.permissionDenied, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let endpoint = value("AWS_ENDPOINT_URL") ?? ""
        if !endpoint.isEmpty && !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
            throw JetError(.invalidParameter, "AWS_ENDPOINT_URL '\(endpoint)' must start with http:// or https://")
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        var c = S3Config(endpoint: endpoint, region: region,
                         credentials: S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")),
                         addressing: addressing ?? (endpoint.isEmpty ? .virtual : .path))
        // Tuning (and the tests' seams: parts of a few KiB, fewer retries against a killed server).
        if let v = value("JETBACKUP_S3_PART_SIZE") {
            guard let n = try? InstanceParameters.parseSize(v), n >= 1024 else {
                throw JetError(.invalidParameter, "JETBACKUP_S3_PART_SIZE '\(v)' is not a size of at least 1KiB")
            }
            c.partSize = n
        }
        if let v = value("JETBACKUP_S3_ATTEMPTS") {
            guard let n = Int(v), (1...20).contains(n) else { throw JetError(.invalidParameter, "JETBACKUP_S3_ATTEMPTS '\(v)' is not 1 to 20") }
            c.attempts = n
        }
        return c
    }

    /// The URL prefix of a bucket (no trailing slash) and the Host header that goes with it.
    func base(bucket: String) -> (url: String, host: String) {
        let ep = endpoint.isEmpty ? "https://s3.\(region).amazonaws.com" : endpoint
        let schemeEnd = ep.firstRange(of: "://").map { $0.upperBound } ?? ep.startIndex
        let scheme = String(ep[..<schemeEnd])
        let host = String(ep[schemeEnd...])
        switch addressing {
        case .path: return ("\(ep)/\(bucket)", host)
        case .virtual: return ("\(scheme)\(bucket).\(host)", "\(bucket).\(host)")
        }
    }

    /// The store's name in messages: the endpoint, never a credential.
    var storeName: String { endpoint.isEmpty ? "s3.\(region).amazonaws.com" : endpoint }

    public var description: String { "S3Config(\(storeName), \(region), \(addressing.rawValue), \(credentials))" }
}
