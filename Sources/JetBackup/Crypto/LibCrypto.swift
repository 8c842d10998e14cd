import COpenSSL

/// libcrypto's one-time setup, done before this module's first call into it: no clean-up at
/// exit. By default OpenSSL frees all its state from an `atexit` handler, which cost every
/// command that hashed anything 0.2 ms at exit (an incremental backup's exit 0.93 → 0.72 ms)
/// to free memory the process gives back anyway. The system's `openssl.cnf` is read as before.
enum LibCrypto {
    static let ready: Void = { _ = OPENSSL_init_crypto(UInt64(OPENSSL_INIT_NO_ATEXIT), nil) }()
}
