#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// printf-style formatting of numbers and padding of columns, for the few places that
/// need them, without Foundation's `String(format:)` (which brings CoreFoundation and
/// ICU into the binary and costs every process start about a millisecond).
public enum Text {
    /// C `printf` formatting of numbers (`%d`, `%.2f`, `%02X`, ...); strings go in by
    /// interpolation, not as `%s`/`%@` arguments.
    public static func format(_ format: String, _ args: CVarArg...) -> String {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = Int(withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) })
        if n >= buffer.count {
            buffer = [CChar](repeating: 0, count: n + 1)
            _ = withVaList(args) { vsnprintf(&buffer, buffer.count, format, $0) }
        }
        return String(decoding: buffer.prefix(max(0, n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `text` padded with spaces on the right to `width` characters; a longer one is cut to
    /// them (Foundation's `padding(toLength:)`), or with `cutting: false` kept whole (printf's `%-11s`).
    public static func padded(_ text: String, to width: Int, cutting: Bool = true) -> String {
        let n = text.count
        if n >= width { return cutting ? String(text.prefix(width)) : text }
        return text + String(repeating: " ", count: width - n)
    }
}

extension StringProtocol {
    /// The text without leading and trailing white space (spaces, tabs, line breaks).
    public var trimmed: String {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
