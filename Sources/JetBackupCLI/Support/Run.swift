import ArgumentParser
import Foundation
import JetStore

/// Runs a command body: JetError becomes the SPEC 5 message on stderr (or JSON on stdout
/// with `--json`) and the exit status of its table. Nothing else decides an exit code.
enum CLI {
    static var owner: String {
        let args = CommandLine.arguments.dropFirst().prefix(3).joined(separator: " ")
        return "pid \(getpid()) (jetbackup \(args))"
    }

    static func run(json: Bool, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as JetError {
            fail(e, json: json)
        } catch let e as ExitCode {
            throw e
        } catch let e as CleanExit {
            throw e
        } catch {
            fail(JetError(.diskIO, "\(error)"), json: json)
        }
    }

    static func fail(_ e: JetError, json: Bool) -> Never {
        if json {
            out(JSONValue.object([("result", .string("error")), ("error", .string(e.code.name)),
                                  ("code", .int(Int64(e.code.rawValue))), ("message", .string(e.message))]).serialized())
        }
        err("jetbackup: \(e.code.name) (\(e.code.rawValue)): \(e.message)")
        flush()
        exit(e.code.exitCode)
    }

    static func out(_ s: String) {
        FileHandle.standardOutput.write(Data((s + "\n").utf8))
    }

    static func outRaw(_ b: [UInt8]) {
        FileHandle.standardOutput.write(Data(b))
    }

    static func err(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    static func flush() { fflush(nil) }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Opens the instance for a command; closes it after `body` (clean shutdown).
    static func withInstance<T>(_ path: String, mode: Instance.AccessMode = .readWrite, _ body: (Instance) throws -> T) throws -> T {
        let inst = try Instance.open(at: path, mode: mode, owner: owner)
        do {
            let r = try body(inst)
            try inst.close()
            return r
        } catch {
            try? inst.close()
            throw error
        }
    }

    static func human(bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(bytes) B" : String(format: "%.1f %@", v, units[u])
    }

    static func time(_ us: UInt64) -> String { us == 0 ? "-" : Clock.rfc3339(microseconds: us) }
}

/// A one-line progress bar on stderr (only when stderr is a terminal).
struct ProgressBar {
    var label: String
    var lastDraw = 0.0

    mutating func draw(done: Int, total: Int, detail: String = "") {
        let now = Clock.monotonicSeconds()
        guard now - lastDraw > 0.1 || done >= total else { return }
        lastDraw = now
        let frac = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let width = 30
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(String(format: "%5.1f", frac * 100))% \(detail)\u{1B}[K".utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}
