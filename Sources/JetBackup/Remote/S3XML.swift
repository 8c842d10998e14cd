#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The few elements of S3's XML answers the client reads (list results, errors, multipart
/// upload ids). S3's documents are flat and machine-written; elements are found by name and
/// their text unescaped, which is all these answers need.
enum S3XML {
    /// Text of every `<name>…</name>` in `xml`, in order.
    static func all(_ name: String, in xml: Substring) -> [String] {
        var out: [String] = []
        let open = "<\(name)>", close = "</\(name)>"
        var rest = xml
        while let a = rest.firstRange(of: open), let b = rest[a.upperBound...].firstRange(of: close) {
            out.append(unescape(rest[a.upperBound..<b.lowerBound]))
            rest = rest[b.upperBound...]
        }
        return out
    }

    static func first(_ name: String, in xml: Substring) -> String? {
        let open = "<\(name)>", close = "</\(name)>"
        guard let a = xml.firstRange(of: open), let b = xml[a.upperBound...].firstRange(of: close) else { return nil }
        return unescape(xml[a.upperBound..<b.lowerBound])
    }

    /// Each `<name>…</name>` block's inner text, for records such as `<Contents>`.
    static func blocks(_ name: String, in xml: Substring) -> [Substring] {
        var out: [Substring] = []
        let open = "<\(name)>", close = "</\(name)>"
        var rest = xml
        while let a = rest.firstRange(of: open), let b = rest[a.upperBound...].firstRange(of: close) {
            out.append(rest[a.upperBound..<b.lowerBound])
            rest = rest[b.upperBound...]
        }
        return out
    }

    static func unescape(_ s: Substring) -> String {
        guard s.contains("&") else { return String(s) }
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "&", let semi = s[i...].firstIndex(of: ";") {
                let ent = s[s.index(after: i)..<semi]
                var ch: String?
                switch ent {
                case "amp": ch = "&"
                case "lt": ch = "<"
                case "gt": ch = ">"
                case "quot": ch = "\""
                case "apos": ch = "'"
                default:
                    if ent.hasPrefix("#x"), let v = UInt32(ent.dropFirst(2), radix: 16), let u = Unicode.Scalar(v) { ch = String(u) }
                    else if ent.hasPrefix("#"), let v = UInt32(ent.dropFirst()), let u = Unicode.Scalar(v) { ch = String(u) }
                }
                if let ch { out += ch; i = s.index(after: semi); continue }
            }
            out.append(s[i])
            i = s.index(after: i)
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    }
}
