import ArgumentParser
import Foundation
import JetStore

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Insert or replace a record (VALUE '-' reads stdin).")
    @Argument var db: String
    @Argument var key: String
    @Argument var value: String
    @OptionGroup var hex: HexOption
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let k = try hex.bytes(key, "key")
            var v: [UInt8]
            if value == "-" {
                v = try CLI.readStdin()
                if hex.hex { v = try Hex.decode(String(decoding: v, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), "value") }
            } else {
                v = try hex.bytes(value, "value")
            }
            let replaced = try CLI.withInstance(instance.path) { try $0.commit([.put(database: db, key: k, value: v)])[0] }
            if output.json {
                CLI.out(JSONValue.object([("result", .string("ok")), ("replaced", .bool(replaced)), ("bytes", .int(Int64(v.count)))]).serialized())
            }
        }
    }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a record's value (exit 1 if the key is absent).")
    @Argument var db: String
    @Argument var key: String
    @OptionGroup var hex: HexOption
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let k = try hex.bytes(key, "key")
            guard let v = try CLI.withInstance(instance.path, mode: .readOnly, { try $0.get(db, k) }) else {
                throw JetError(.recordNotFound, "no record with key '\(key)' in database \(db)")
            }
            if output.json {
                CLI.out(JSONValue.object([("key", .string(key)), ("value", .string(hex.text(v)))]).serialized())
            } else if hex.hex {
                CLI.out(Hex.encode(v))
            } else {
                CLI.outRaw(v + [0x0A])
            }
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a record (exit 1 if the key is absent).")
    @Argument var db: String
    @Argument var key: String
    @OptionGroup var hex: HexOption
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try CLI.run(json: output.json) {
            let k = try hex.bytes(key, "key")
            let found = try CLI.withInstance(instance.path) { try $0.commit([.delete(database: db, key: k)])[0] }
            guard found else { throw JetError(.recordNotFound, "no record with key '\(key)' in database \(db)") }
            if output.json { CLI.out(JSONValue.object([("result", .string("ok"))]).serialized()) }
        }
    }
}

struct Scan: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Records in key order: KEY<TAB>VALUE per line.")
    @Argument var db: String
    @Option(help: "Only keys starting with this prefix.") var prefix: String?
    @Option(help: "At most N records.") var limit: Int?
    @OptionGroup var hex: HexOption
    @OptionGroup var instance: InstanceOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        if let l = limit, l < 0 { throw ValidationError("--limit must be 0 or more") }
    }

    func run() throws {
        try CLI.run(json: output.json) {
            let p = try prefix.map { try hex.bytes($0, "prefix") } ?? []
            var records: [JSONValue] = []
            var n = 0
            try CLI.withInstance(instance.path, mode: .readOnly) { inst in
                try inst.scan(db, prefix: p, limit: limit ?? .max) { k, v in
                    n += 1
                    if output.json {
                        records.append(.object([("key", .string(hex.text(k))), ("value", .string(hex.text(v)))]))
                    } else {
                        CLI.outRaw(Array(hex.text(k).utf8) + [0x09] + Array(hex.text(v).utf8) + [0x0A])
                    }
                    return true
                }
            }
            if output.json { CLI.out(JSONValue.object([("count", .int(Int64(n))), ("records", .array(records))]).serialized()) }
        }
    }
}
