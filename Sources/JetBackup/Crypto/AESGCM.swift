import COpenSSL
import JetStore

/// AES-256-GCM through OpenSSL's EVP interface: one call seals or opens one message with a
/// 12-byte nonce, additional authenticated data and a 16-byte tag. The context is reused
/// across calls of one owner (not shared between threads).
final class AESGCM {
    static let keySize = 32, nonceSize = 12, tagSize = 16
    private let ctx: OpaquePointer
    private let key: [UInt8]

    init(key: [UInt8]) {
        precondition(key.count == Self.keySize)
        self.key = key
        LibCrypto.ready
        // Allocation failure of a few hundred bytes is not recoverable here.
        ctx = EVP_CIPHER_CTX_new()!
    }

    deinit { EVP_CIPHER_CTX_free(ctx) }

    /// Ciphertext followed by the tag.
    func seal(_ plain: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plain.count + Self.tagSize)
        var n: Int32 = 0
        _ = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce)
        aad.withUnsafeBufferPointer { a in _ = EVP_EncryptUpdate(ctx, nil, &n, a.baseAddress, Int32(a.count)) }
        out.withUnsafeMutableBufferPointer { o in
            if plain.count > 0 {
                _ = EVP_EncryptUpdate(ctx, o.baseAddress, &n, plain.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(plain.count))
            }
            _ = EVP_EncryptFinal_ex(ctx, o.baseAddress! + plain.count, &n)
            _ = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagSize), o.baseAddress! + plain.count)
        }
        return out
    }

    /// The plaintext, or nil when the tag does not match (changed bytes, wrong key, nonce or AAD).
    func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard sealed.count >= Self.tagSize else { return nil }
        let n = sealed.count - Self.tagSize
        var out = [UInt8](repeating: 0, count: max(n, 1))
        var len: Int32 = 0
        _ = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce)
        aad.withUnsafeBufferPointer { a in _ = EVP_DecryptUpdate(ctx, nil, &len, a.baseAddress, Int32(a.count)) }
        let base = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let ok = out.withUnsafeMutableBufferPointer { o -> Bool in
            if n > 0 { _ = EVP_DecryptUpdate(ctx, o.baseAddress, &len, base, Int32(n)) }
            var tag = Array(UnsafeBufferPointer(start: base + n, count: Self.tagSize))
            _ = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagSize), &tag)
            return EVP_DecryptFinal_ex(ctx, o.baseAddress! + n, &len) == 1
        }
        return ok ? Array(out.prefix(n)) : nil
    }

    static func random(_ n: Int) -> [UInt8] {
        LibCrypto.ready
        var out = [UInt8](repeating: 0, count: n)
        // RAND_bytes fails only without an entropy source; then nothing may be encrypted.
        precondition(RAND_bytes(&out, Int32(n)) == 1, "no random bytes from OpenSSL")
        return out
    }
}
