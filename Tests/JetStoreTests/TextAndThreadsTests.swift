import Testing
@testable import JetStore

/// The formatting and thread helpers that stand in for Foundation's `String(format:)`,
/// `padding(toLength:)`, `trimmingCharacters(in:)` and `Thread` (the binary links only
/// FoundationEssentials).
@Suite struct TextAndThreadsTests {
    @Test func formatMatchesPrintf() {
        #expect(Text.format("%.2f", 3.14159) == "3.14")
        #expect(Text.format("%.1f", 12.25) == "12.2")
        #expect(Text.format("%5.1f", 7.0) == "  7.0")
        #expect(Text.format("%%%02X", 10) == "%0A")
        #expect(Text.format("%04d%02d%02dT%02d%02d%02dZ", 2026, 12, 6, 9, 5, 1) == "20261206T090501Z")
        #expect(Text.format("%.0f", 26745.6) == "26746")
        // Longer than the first buffer: formatted again into one of the right size.
        let long = Text.format("%0300d", 42)
        #expect(long.count == 300 && long.hasSuffix("42") && long.hasPrefix("000"))
    }

    @Test func paddedPadsAndCutsLikeFoundation() {
        #expect(Text.padded("ab", to: 5) == "ab   ")
        #expect(Text.padded("abcdef", to: 3) == "abc")
        #expect(Text.padded("", to: 2) == "  ")
        #expect(Text.padded("abc", to: 3) == "abc")
        #expect(Text.padded("incremental!", to: 11, cutting: false) == "incremental!")
        #expect(Text.padded("full", to: 11, cutting: false) == "full       ")
    }

    @Test func trimmedDropsWhiteSpaceAtBothEnds() {
        #expect("  64KiB \t".trimmed == "64KiB")
        #expect("\n pid 12 \r\n".trimmed == "pid 12")
        #expect("a b".trimmed == "a b")
        #expect(" \t\n".trimmed == "")
        #expect("".trimmed == "")
        #expect("x"[...].trimmed == "x")
    }

    @Test func threadsRunTheirBodyAndConditionsWakeThem() {
        let c = Condition()
        let done = Counter()
        for i in 0..<4 {
            Threads.start(name: "test-thread-with-a-long-name-\(i)", stackSize: i == 0 ? 0 : 256 << 10) {
                c.withLock { done.n += 1; c.signal() }
            }
        }
        c.withLock { while done.n < 4 { c.wait(seconds: 5) } }
        #expect(c.withLock { done.n } == 4)
    }

    @Test func lockSerialisesItsSections() {
        let l = Lock()
        let c = Condition()
        let total = Counter(), finished = Counter()
        for _ in 0..<4 {
            Threads.start(name: "test-lock") {
                for _ in 0..<10_000 { l.withLock { total.n += 1 } }
                c.withLock { finished.n += 1; c.broadcast() }
            }
        }
        c.withLock { while finished.n < 4 { c.wait(seconds: 5) } }
        #expect(l.withLock { total.n } == 40_000)
    }

    final class Counter: @unchecked Sendable {
        var n = 0
    }
}
