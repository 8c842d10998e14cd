import JetStore

/// SHA-256 of an instance's logical content, in key order, independent of page layout:
/// two instances with the same records have the same digest.
///
/// For each database, in name order: `"D"`, u32 name length, name; then each record:
/// `"R"`, u32 key length, key, u32 value length, value. Lengths little-endian.
public struct ContentDigest {
    private let hasher = SHA256Hasher()
    public private(set) var records = 0

    public init() {}

    public mutating func database(_ name: String) {
        hasher.update([0x44])
        length(name.utf8.count)
        hasher.update(Array(name.utf8))
    }

    public mutating func record(_ key: [UInt8], _ value: [UInt8]) {
        hasher.update([0x52])
        length(key.count)
        hasher.update(key)
        length(value.count)
        hasher.update(value)
        records += 1
    }

    private mutating func length(_ n: Int) {
        withUnsafeBytes(of: UInt32(n).littleEndian) { hasher.update($0) }
    }

    /// The digest (once: the hasher is spent afterwards).
    public func hex() -> String { hasher.finalizeHex() }

    /// Digest of an open instance: every database, or one.
    public static func of(_ instance: Instance, database: String? = nil) throws -> (hex: String, records: Int) {
        var d = ContentDigest()
        let names = database.map { [$0] } ?? instance.databaseNames
        for name in names {
            d.database(name)
            try instance.scan(name) { k, v in d.record(k, v); return true }
        }
        return (d.hex(), d.records)
    }

    /// Digest of records held in memory (tests, the load generator's expected content).
    public static func of(_ databases: [String: [[UInt8]: [UInt8]]]) -> String {
        var d = ContentDigest()
        for name in databases.keys.sorted() {
            d.database(name)
            let recs = databases[name]!
            for k in recs.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) { d.record(k, recs[k]!) }
        }
        return d.hex()
    }
}
