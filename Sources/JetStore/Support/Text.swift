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
        withVaList(args) { list in
            var buffer = [CChar](repeating: 0, count: 128)
            let n = Int(vsnprintf(&buffer, buffer.count, format, list))
            guard n >= buffer.count else { return String(cString: buffer) }
            buffer = [CChar](repeating: 0, count: n + 1)
            return withVaList(args) { again in
                _ = vsnprintf(&buffer, buffer.count, format, again)
                return String(cString: buffer)
            }
        }
    }

    /// `text` padded with spaces on the right to `width` characters, or cut to them.
    public static func padded(_ text: String, to width: Int) -> String {
        let n = text.count
        return n >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - n)
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
