import COpenSSL

/// One-shot SHA-256 and HMAC-SHA256 through libcrypto, for request signing and key handling
/// (streams of data go through `SHA256Hasher`).
enum Digest {
    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        LibCrypto.ready
        var out = [UInt8](repeating: 0, count: 32)
        bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBufferPointer { o in _ = EVP_Digest(b.baseAddress, b.count, o.baseAddress, nil, EVP_sha256(), nil) }
        }
        return out
    }

    static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        LibCrypto.ready
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 32
        key.withUnsafeBytes { k in
            data.withUnsafeBytes { d in
                out.withUnsafeMutableBufferPointer { o in
                    _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress?.assumingMemoryBound(to: UInt8.self),
                             d.count, o.baseAddress, &n)
                }
            }
        }
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let d = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(d[Int(b >> 4)]); out.append(d[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// SHA-256 of nothing: the payload hash of a request without a body.
    static let emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
