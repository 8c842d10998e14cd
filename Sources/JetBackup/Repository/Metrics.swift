import JetStore

/// `--metrics-file`: the Prometheus text format, written whole to a temporary file and
/// renamed (node_exporter's textfile collector reads only `*.prom`, never the `.tmp`).
/// Backup and expire may share one file: each rewrites only its own lines (label `job`)
/// and keeps the others'. A failed run keeps the last success time it finds in the file.
public struct Metrics: Sendable {
    public var job: String
    public var labels: [(String, String)]
    public var success: Bool
    public var exitStatus: Int32
    public var durationSeconds: Double
    public var bytesRead: Int64 = 0
    public var bytesStored: Int64 = 0
    public var sets: Int?
    public var now: UInt64

    public init(job: String, labels: [(String, String)], success: Bool, exitStatus: Int32, durationSeconds: Double, now: UInt64) {
        self.job = job
        self.labels = labels
        self.success = success
        self.exitStatus = exitStatus
        self.durationSeconds = durationSeconds
        self.now = now
    }

    static let names: [(String, String)] = [
        ("jetbackup_last_success_timestamp_seconds", "When the job last succeeded (seconds since the epoch)."),
        ("jetbackup_last_run_timestamp_seconds", "When the job last ran."),
        ("jetbackup_last_duration_seconds", "How long the last run took."),
        ("jetbackup_last_bytes_read", "Bytes the last run read from the instance."),
        ("jetbackup_last_bytes_stored", "Bytes the last run wrote into the repository."),
        ("jetbackup_repository_sets", "Sets in the repository after the last run."),
        ("jetbackup_last_exit_status", "The exit status of the last run (0: success)."),
    ]

    /// Label text: `{job="backup",instance="/srv/db"}`, values escaped as the format asks.
    var labelText: String {
        let all = [("job", job)] + labels
        return "{" + all.map { k, v in
            let e = v.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
                .replacing("\n", with: "\\n")
            return "\(k)=\"\(e)\""
        }.joined(separator: ",") + "}"
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// The file's new text, given its old text (nil: none).
    public func render(previous: String?) -> String {
        let mine = labelText
        var samples: [String: [String]] = [:]
        var lastSuccess: Double?
        for line in (previous ?? "").split(separator: "\n") where !line.hasPrefix("#") {
            let l = String(line)
            guard let brace = l.firstIndex(of: "{"), let close = l.lastIndex(of: "}") else { continue }
            let name = String(l[..<brace])
            let labels = String(l[brace...close])
            if labels == mine {
                if name == Self.names[0].0 { lastSuccess = Double(l[l.index(after: close)...].trimmed) }
                continue
            }
            samples[name, default: []].append(l)
        }
        let t = Double(now) / 1e6
        var values: [String: Double] = [
            Self.names[1].0: t, Self.names[2].0: durationSeconds, Self.names[3].0: Double(bytesRead),
            Self.names[4].0: Double(bytesStored), Self.names[6].0: Double(exitStatus),
        ]
        if let sets { values[Self.names[5].0] = Double(sets) }
        if success { values[Self.names[0].0] = t } else if let lastSuccess { values[Self.names[0].0] = lastSuccess }
        var out = ""
        for (name, help) in Self.names {
            var lines = samples[name] ?? []
            if let v = values[name] { lines.append("\(name)\(mine) \(Self.number(v))") }
            guard !lines.isEmpty else { continue }
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n" + lines.sorted().joined(separator: "\n") + "\n"
        }
        return out
    }

    /// Writes the file (temporary file, fsync, rename).
    public func write(to path: String, fs: any FileSystem = PosixFileSystem()) throws {
        let old = (try? fs.readAll(path)).map { String(decoding: $0, as: UTF8.self) }
        try fs.writeAtomically(path, Array(render(previous: old).utf8))
    }
}
