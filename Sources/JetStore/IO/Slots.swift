import Foundation

/// Results filled in by concurrent workers, read after they all finished.
public final class Slots<T>: @unchecked Sendable {
    private var items: [Result<T, Error>?]
    private let lock = NSLock()
    public init(count: Int) { items = Array(repeating: nil, count: count) }
    public func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); items[i] = r; lock.unlock() }
    public func get(_ i: Int) throws -> T {
        lock.lock(); defer { lock.unlock() }
        guard let r = items[i] else { throw JetError(.diskIO, "internal: a worker produced no result") }
        return try r.get()
    }
}
