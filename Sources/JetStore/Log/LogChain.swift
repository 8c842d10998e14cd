/// The one check that a log generation belongs where it stands in a chain: the stream's
/// signature, the generation its place expects, the link to the generation before it
/// (its header repeats the previous one's creation time), and records that all read.
///
/// Recovery, the backup's log reads and the check of a backup set's logs all ask this
/// question. The check reports what is wrong; each caller turns that into the ESE error of
/// its situation (`error(file:given:)`), so one fault gets one error everywhere it is seen.
public enum LogChainFault: Equatable, Sendable {
    /// The generation belongs to another log stream (another instance).
    case foreignSignature(found: Signature, expected: Signature)
    /// The header holds another generation than its place in the chain expects.
    case wrongGeneration(found: UInt32, expected: UInt32)
    /// The header's previous creation time is not the creation time of the generation
    /// before it: the two do not belong to one stream (swapped, or mixed from two copies).
    case brokenLink(previousGeneration: UInt32)
    /// A record fails its checks after being written (not a torn tail of a crash).
    case damaged(offset: Int, reason: String)

    /// Checks `g` as generation `expected` of the stream `signature`, following a generation
    /// created at `previousCreation` (nil: nothing to link to). A bad record at the end that
    /// a crash tore (`allowTornTail`, only for the newest generation of a live log) is not a fault.
    public static func check(_ g: LogReader.Generation, expected: UInt32, signature: Signature,
                             previousCreation: UInt64?, allowTornTail: Bool = false) -> LogChainFault? {
        if allowTornTail && g.endsInTornWrite {
            return check(g.header, expected: expected, signature: signature, previousCreation: previousCreation)
        }
        return check(g.scan, expected: expected, signature: signature, previousCreation: previousCreation)
    }

    /// `check` of a generation scanned where its bytes are held (a torn tail is damage).
    public static func check(_ s: LogReader.Scan, expected: UInt32, signature: Signature, previousCreation: UInt64?) -> LogChainFault? {
        if let f = check(s.header, expected: expected, signature: signature, previousCreation: previousCreation) { return f }
        if case .bad(let o, let reason, _) = s.end { return .damaged(offset: o, reason: reason) }
        return nil
    }

    /// The header part of `check`: signature, generation and link.
    public static func check(_ h: LogFormat.Header, expected: UInt32, signature: Signature,
                             previousCreation: UInt64?) -> LogChainFault? {
        if h.signature != signature { return .foreignSignature(found: h.signature, expected: signature) }
        if h.generation != expected { return .wrongGeneration(found: h.generation, expected: expected) }
        if let p = previousCreation, h.previousCreationTime != p { return .brokenLink(previousGeneration: expected &- 1) }
        return nil
    }

    /// The ESE error for this fault in `file`. `given`: the log was handed to us as part of
    /// a backup set (ESE's "given log file" errors); otherwise it is an instance's own log.
    /// The README's error table lists the mapping.
    public func error(file: String, given: Bool) -> JetError {
        let remedy = given ? "the set cannot be restored: use another backup" : "restore the instance from a backup"
        switch self {
        case .foreignSignature(let found, let expected):
            return JetError(given ? .givenLogFileHasBadSignature : .badLogSignature,
                            "log generation \(file) belongs to another log stream (signature \(found), expected \(expected)); \(remedy)")
        case .wrongGeneration(let found, let expected):
            // An instance's own file whose content is not what its name says is damaged; a
            // set's log in the wrong place does not continue the chain.
            return JetError(given ? .givenLogFileIsNotContiguous : .logReadVerifyFailure,
                            "\(file) holds generation \(found), its name says \(expected); \(remedy)")
        case .brokenLink(let prev):
            return JetError(.givenLogFileIsNotContiguous,
                            "log generation \(file) does not follow generation \(prev) (creation times do not link); \(remedy)")
        case .damaged(let o, let reason):
            return JetError(.logReadVerifyFailure, "log generation \(file) is damaged at offset \(o) (\(reason)); \(remedy)")
        }
    }
}
