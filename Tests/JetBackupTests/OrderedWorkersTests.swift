import Foundation
import Testing
@testable import JetBackup
@testable import JetStore

/// The log copy's workers: items come back in order whatever order they finish in, no more
/// than `window` are ever held ahead of the caller, a failure reaches the caller at its own
/// item, and a caller that stops early leaves no worker running and no item started past the
/// window.
@Suite struct OrderedWorkersTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var started: [Int] = []
        private var live = 0
        private(set) var most = 0
        func begin(_ k: Int) { lock.withLock { started.append(k); live += 1; most = max(most, live) } }
        func end() { lock.withLock { live -= 1 } }
    }

    @Test func itemsComeBackInOrderAndNoMoreThanTheWindowAreHeld() throws {
        let c = Counter()
        let work = OrderedWorkers<Int>(count: 200, lanes: 4, window: 6) { k, lane in
            c.begin(k)
            #expect((0..<4).contains(lane))
            // Later items often finish first.
            usleep(useconds_t((k * 7919) % 5 * 200))
            return k * k
        }
        defer { work.stop() }
        var got: [Int] = []
        for k in 0..<200 {
            got.append(try work.take(k))
            // Held = started and not yet taken by us.
            #expect(c.started.count - (k + 1) <= 6, "item \(k): \(c.started.count) started")
            c.end()
        }
        work.stop()
        #expect(got == (0..<200).map { $0 * $0 })
        #expect(Set(c.started) == Set(0..<200) && c.started.count == 200)
    }

    @Test func aFailureReachesTheCallerAtItsItemAndStopEndsTheRest() throws {
        struct Boom: Error {}
        let c = Counter()
        let work = OrderedWorkers<Int>(count: 1000, lanes: 3, window: 4) { k, _ in
            c.begin(k)
            if k == 10 { throw Boom() }
            usleep(100)
            return k
        }
        for k in 0..<10 { #expect(try work.take(k) == k) }
        #expect(throws: Boom.self) { try work.take(10) }
        work.stop()
        let after = c.started.count
        // Nothing is started once stop returned, and nothing past the window was ever started.
        usleep(20_000)
        #expect(c.started.count == after)
        #expect(c.started.max()! < 11 + 4, "\(c.started.max()!)")
        work.stop() // idempotent
    }

    @Test func moreLanesThanItemsAndNoItemsAtAll() throws {
        let few = OrderedWorkers<String>(count: 2, lanes: 8, window: 16) { k, _ in "\(k)" }
        #expect(try few.take(0) == "0" && few.take(1) == "1")
        few.stop()
        let none = OrderedWorkers<Int>(count: 0, lanes: 4, window: 4) { k, _ in k }
        none.stop()
    }
}
