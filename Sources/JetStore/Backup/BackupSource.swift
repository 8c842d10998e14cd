/// What a backup set writer needs from the engine: the engine's own `BackupSession` in the
/// process that owns the instance, or `RemoteBackupSession`, the same session served by that
/// owner over its control socket. Both hand out pages and logs the engine verified; both
/// record the backup and truncate only in `complete`, after the writer made the set durable.
public protocol BackupSource: AnyObject, Sendable {
    var kind: BackupSession.Kind { get }
    var start: LogPosition { get }
    var startTime: UInt64 { get }
    var logSignature: Signature { get }
    var databases: [BackupSession.Database] { get }
    var previousEnd: UInt32? { get }
    var pageSize: Int { get }
    var logFileSize: Int { get }
    var firstGeneration: UInt32 { get }
    /// The generation being written now (progress estimates).
    var currentGeneration: UInt32 { get }
    /// True once the instance (or its owner) began shutting down: the writer stops.
    var isInstanceTerminating: Bool { get }
    /// The instance directory (the writer refuses a destination inside it).
    var instancePath: String { get }
    /// Where the run's events go: the instance's `events.log`, written by its owner.
    var events: EventLog { get }

    func readDatabase(_ name: String, at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func rollLog() throws -> UInt32
    func generations(from first: UInt32?, through last: UInt32) throws -> ClosedRange<UInt32>
    func readLog(_ g: UInt32, previousCreation: UInt64?) throws -> BackupSession.LogFile
    func complete(generations: ClosedRange<UInt32>) throws -> ClosedRange<UInt32>?
    func abort()
}

extension BackupSession: BackupSource {
    public var instancePath: String { instance.path }
    public var events: EventLog { instance.events }
}

extension BackupSource {
    public func generations(through last: UInt32) throws -> ClosedRange<UInt32> { try generations(from: nil, through: last) }
    public func readLog(_ g: UInt32) throws -> BackupSession.LogFile { try readLog(g, previousCreation: nil) }
}
