import ArgumentParser

/// `--progress` of backup and restore: a bar on a terminal (`auto`), always a bar, JSON
/// lines on stderr, or nothing.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, bar, json, none

    var showsBar: Bool { self == .bar || (self == .auto && CLI.stderrIsTerminal) }
}

/// `--progress` of load: as above, or `commits` (a line on stdout after each durable commit).
enum LoadProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, bar, none, commits
    /// `commits` with each commit's time: `committed N TIME` (RFC 3339, UTC, microseconds).
    case commitTimes = "commit-times"

    var showsBar: Bool { self == .bar || (self == .auto && CLI.stderrIsTerminal) }
}
