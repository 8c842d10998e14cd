import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetStore

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put",
        abstract: "Insert or replace a record (VALUE '-' reads stdin).",
        discussion: """
            KEY and VALUE are UTF-8 text, hex bytes with --hex, or scan's escaped form with \
            --escaped (which any bytes round-trip through). VALUE '-' reads the value from stdin: \
            raw bytes; with --hex or --escaped, that form, a trailing newline ignored.
            """)
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
                if hex.hex { v = try Hex.decode(String(decoding: v, as: UTF8.self).trimmed, "value") }
                if hex.escaped {
                    if v.last == 0x0A { v.removeLast() }
                    v = try Escaped.decode(String(decoding: v, as: UTF8.self), "value")
                }
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
    static let configuration = CommandConfiguration(commandName: "get",
        abstract: "Print a record's value (exit 1 if the key is absent).",
        discussion: "The value's bytes as they are, then a newline; "
            + "--hex prints hex, --escaped scan's escaped form. With --json, "
                + "\"value\" is null and \"valueHex\" holds hex when the value is not valid UTF-8.")
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
                CLI.out(JSONValue.object([("key", .string(key))] + hex.json("value", v)).serialized())
            } else if hex.hex || hex.escaped {
                CLI.out(hex.line(v))
            } else {
                CLI.outRaw(v + [0x0A])
            }
        }
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Delete a record (exit 1 if the key is absent).")
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
    static let configuration = CommandConfiguration(commandName: "scan",
        abstract: "Records in key order: KEY<TAB>VALUE per line.",
        discussion: """
            Keys and values are printed escaped, so one line is one record and the text gives back \
            the exact bytes: \\\\ for a backslash, \\t tab, \\n newline, \\r carriage return, \\xHH \
            for other control bytes and for bytes that are not valid UTF-8; everything else is the \
            UTF-8 text itself. put, get and delete take that form with --escaped. --hex prints hex \
            instead. With --json, "key" and "value" are the exact text, or null with \
            "keyHex"/"valueHex" when the bytes are not valid UTF-8.
            """)
    @Argument var db: String
    @Option(help: "Only keys starting with this prefix.") var prefix: String?
    @Option(parsing: .unconditional, help: "At most N records.") var limit: Int?
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
                        records.append(.object(hex.json("key", k) + hex.json("value", v)))
                    } else {
                        CLI.outRaw(Array(hex.line(k).utf8) + [0x09] + Array(hex.line(v).utf8) + [0x0A])
                        try CLI.checkOutput()
                    }
                    return true
                }
            }
            if output.json { CLI.out(JSONValue.object([("count", .int(Int64(n))), ("records", .array(records))]).serialized()) }
        }
    }
}
