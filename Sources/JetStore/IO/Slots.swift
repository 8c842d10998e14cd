#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Results filled in by concurrent workers, read after they all finished.
public final class Slots<T>: @unchecked Sendable {
    private var items: [Result<T, Error>?]
    private let lock = Lock()
    public init(count: Int) { items = Array(repeating: nil, count: count) }
    public func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); items[i] = r; lock.unlock() }
    public func get(_ i: Int) throws -> T {
        lock.lock(); defer { lock.unlock() }
        guard let r = items[i] else { throw JetError(.diskIO, "internal: a worker produced no result") }
        return try r.get()
    }

    /// Runs `body(k)` for every `k` in `0..<count`, `lanes` at a time, each lane in order
    /// (lane 0 takes 0, lanes, 2 lanes…); waits for all, then throws the first failure in order.
    public static func run(_ count: Int, lanes: Int, _ body: @Sendable (Int) throws -> Void) throws where T == Void {
        let outcomes = Slots<Void>(count: count)
        let width = max(1, min(lanes, count))
        DispatchQueue.concurrentPerform(iterations: width) { lane in
            for k in Swift.stride(from: lane, to: count, by: width) { outcomes.set(k, Result { try body(k) }) }
        }
        for k in 0..<count { try outcomes.get(k) }
    }
}
