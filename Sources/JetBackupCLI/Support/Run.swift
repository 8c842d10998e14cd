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

    static func out(_ s: String) { write(1, Array((s + "\n").utf8)) }

    static func outRaw(_ b: [UInt8]) { write(1, b) }

    static func err(_ s: String) { write(2, Array((s + "\n").utf8)) }

    /// All of standard input (`put DB KEY -`); a read error is JET_errDiskIO, not a trap.
    static func readStdin() throws -> [UInt8] {
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(0, $0.baseAddress, $0.count) }
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n == 0 { return out }
            if errno == EINTR { continue }
            throw JetError(.diskIO, "could not read the value from standard input (errno \(errno))")
        }
    }

    /// Writes to a standard stream with write(2), retrying short writes and EINTR. A failing
    /// stdout or stderr (closed pipe, full disk) must not turn into a trap: Foundation's
    /// FileHandle traps on write errors, so it is not used for output.
    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { p in
            var done = 0
            while done < p.count {
                let n = Glibc.write(fd, p.baseAddress! + done, p.count - done)
                if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }

    static func flush() { fflush(nil) }

    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Opens the instance for a command; closes it after `body` (clean shutdown).
    static func withInstance<T>(_ path: String, mode: Instance.AccessMode = .readWrite, _ body: (Instance) throws -> T) throws -> T {
        let inst = try Instance.open(at: path, mode: mode, owner: owner)
        let r: T
        do {
            r = try body(inst)
        } catch {
            try? inst.close()
            throw error
        }
        // The work is done and durable (commits are in the log; a backup is complete and
        // recorded). A failure to shut down cleanly loses nothing — the next open recovers —
        // so it is a warning, not a failed command that a script would wrongly redo or undo.
        do {
            try inst.close()
        } catch let e as JetError {
            err("jetbackup: warning: \(e.code.name) (\(e.code.rawValue)) while closing the instance: \(e.message); the work above is complete and durable, and the next open of the instance recovers")
        } catch {
            err("jetbackup: warning: closing the instance failed: \(error); the next open recovers")
        }
        return r
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
        CLI.write(2, Array("\r\(label) [\(bar)] \(String(format: "%5.1f", frac * 100))% \(detail)\u{1B}[K".utf8))
    }

    func finish() { CLI.write(2, [0x0A]) }
}
