import JetStore

/// Where a repository or a set lives in object storage: `s3://BUCKET/PREFIX`. The prefix is
/// kept without leading or trailing slashes; keys under it are `PREFIX/NAME`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public let bucket: String
    public let prefix: String

    public static func isS3(_ text: String) -> Bool { text.hasPrefix("s3://") }

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// Parses `s3://BUCKET[/PREFIX]`; a bucket name follows S3's rules (3–63 of a-z, 0-9, '.', '-').
    public init(parsing text: String) throws {
        guard Self.isS3(text) else { throw JetError(.invalidPath, "\(text) is not an s3://BUCKET/PREFIX address") }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        let ok = (3...63).contains(bucket.count) && bucket.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "." || $0 == "-" }
        guard ok else {
            throw JetError(.invalidPath, "\(text): '\(bucket)' is not a bucket name (3 to 63 characters of a-z, 0-9, '.' and '-')")
        }
        self.init(bucket: bucket, prefix: String(rest.dropFirst(bucket.count)))
    }

    /// The key of `name` under the prefix.
    public func key(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }

    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }
}
