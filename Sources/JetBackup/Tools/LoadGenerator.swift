import JetStore

/// The workload generator behind `jetbackup load`. The i-th record (key, value, insert or
/// update) depends only on the seed, the value size, the update ratio and i — never on the
/// record count or batch size — so a load of N records is exactly the first N of a load of
/// M > N, whatever the batching.
public struct LoadGenerator: Sendable {
    public var seed: UInt64
    public var valueSize: Int
    /// Fraction of records that update an earlier record's key, 0...1.
    public var updateRatio: Double

    public init(seed: UInt64, valueSize: Int, updateRatio: Double) {
        self.seed = seed
        self.valueSize = valueSize
        self.updateRatio = updateRatio
    }

    @inline(__always)
    func hash(_ i: UInt64, _ salt: UInt64) -> UInt64 {
        var g = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ i &* 0xD1B5_4A32_D192_ED03 ^ salt)
        return g.next()
    }

    /// True if record `i` updates an earlier key.
    public func isUpdate(_ i: Int) -> Bool {
        guard i > 0, updateRatio > 0 else { return false }
        return Double(hash(UInt64(i), 1) >> 11) / Double(1 << 53) < updateRatio
    }

    /// The key of record `i`: 16 hex characters, uniformly spread (random inserts).
    /// An update reuses the key of an earlier record, chosen by the hash.
    public func key(_ i: Int) -> [UInt8] {
        var j = i
        while isUpdate(j) { j = Int(hash(UInt64(j), 2) % UInt64(j)) }
        let h = hash(UInt64(j), 3)
        let digits = Array("0123456789abcdef".utf8)
        return (0..<16).map { k in digits[Int((h >> (60 - 4 * UInt64(k))) & 0xF)] }
    }

    /// The value of record `i`: printable, `valueSize` bytes.
    public func value(_ i: Int) -> [UInt8] {
        var g = SplitMix64(seed: hash(UInt64(i), 4))
        var out = [UInt8](repeating: 0, count: valueSize)
        var k = 0
        while k < valueSize {
            var r = g.next()
            for _ in 0..<8 where k < valueSize {
                out[k] = 0x61 + UInt8(r % 26)
                r /= 26
                k += 1
            }
        }
        return out
    }

    /// What the first `count` records leave in the database.
    public func expectedContent(count: Int) -> [[UInt8]: [UInt8]] {
        var m: [[UInt8]: [UInt8]] = [:]
        for i in 0..<count { m[key(i)] = value(i) }
        return m
    }

    public struct Summary: Sendable {
        public var records = 0
        public var inserts = 0
        public var updates = 0
        public var commits = 0
        public var bytes = 0
        public var generationsWritten = 0
        /// Bytes of log records written (record headers and padding included).
        public var logBytes: Int64 = 0
        public var seconds = 0.0
        public var recordsPerSecond: Double { seconds > 0 ? Double(records) / seconds : 0 }
    }

    /// Writes records `0..<count` into `database` in commits of `batch`. `progress` is
    /// called after each commit returns (durable) with the records written so far and the
    /// commit's time as its log record carries it.
    public func run(_ instance: Instance, database: String, count: Int, batch: Int,
                    progress: (Int, UInt64?) throws -> Void = { _, _ in }) throws -> Summary {
        guard batch > 0 else { throw JetError(.invalidParameter, "the batch size must be at least 1") }
        var s = Summary()
        let startGen = instance.currentGeneration
        let startLog = instance.logBytesAppended
        let t0 = Clock.monotonicSeconds()
        var i = 0
        while i < count {
            let n = min(batch, count - i)
            var ops: [Mutation] = []
            ops.reserveCapacity(n)
            for k in i..<(i + n) {
                let key = key(k), v = value(k)
                s.bytes += key.count + v.count
                ops.append(.put(database: database, key: key, value: v))
            }
            let (found, time) = try instance.commitTimed(ops)
            for f in found { if f { s.updates += 1 } else { s.inserts += 1 } }
            i += n
            s.commits += 1
            s.records = i
            try progress(i, time)
        }
        s.seconds = Clock.monotonicSeconds() - t0
        s.generationsWritten = Int(instance.currentGeneration) - Int(startGen)
        s.logBytes = instance.logBytesAppended - startLog
        return s
    }
}
