import CZstd
import JetStore

/// zstd frames for copied logs: one frame per file, content size and content checksum in
/// the frame, so the standard `zstd -t` / `zstd -d` accept them.
public enum Zstd {
    public static let defaultLevel = 3
    public static let levels = 1...19

    /// Compresses `input` at `level` into one frame.
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int) throws -> [UInt8] {
        guard let cctx = ZSTD_createCCtx() else { throw JetError(.diskIO, "zstd: out of memory") }
        defer { ZSTD_freeCCtx(cctx) }
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, Int32(level)))
        try check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1))
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = try out.withUnsafeMutableBytes { dst in
            try check(ZSTD_compress2(cctx, dst.baseAddress, bound, input.baseAddress, input.count))
        }
        out.removeLast(bound - n)
        return out
    }

    /// Decompresses one frame of at most `maxSize` bytes (the manifest's raw size: a crafted
    /// frame cannot make us allocate more). Errors name `file`.
    public static func decompress(_ input: [UInt8], maxSize: Int, file: String) throws -> [UInt8] {
        let size = input.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= UInt64(maxSize) else {
            throw JetError(.logReadVerifyFailure, "\(file) is not a zstd frame of at most \(maxSize) bytes; the compressed log is damaged: "
                + "use another backup")
        }
        guard let dctx = ZSTD_createDCtx() else { throw JetError(.diskIO, "zstd: out of memory") }
        defer { ZSTD_freeDCtx(dctx) }
        var out = [UInt8](repeating: 0, count: Int(size))
        let n = out.withUnsafeMutableBytes { dst in
            input.withUnsafeBytes { src in ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count) }
        }
        if ZSTD_isError(n) != 0 || n != Int(size) {
            let why = ZSTD_isError(n) != 0 ? String(cString: ZSTD_getErrorName(n)) : "short frame"
            throw JetError(.logReadVerifyFailure, "\(file) does not decompress (\(why)); the compressed log is damaged: use another backup")
        }
        return out
    }

    @discardableResult
    static func check(_ r: Int) throws -> Int {
        if ZSTD_isError(r) != 0 { throw JetError(.diskIO, "zstd: \(String(cString: ZSTD_getErrorName(r)))") }
        return r
    }
}
