#if canImport(Glibc)
import Glibc
#endif

/// A connection to the process that owns an instance, after the greeting: the owner
/// accepted our uid and speaks our protocol version.
public final class ControlClient: @unchecked Sendable {
    public let socket: ControlSocket
    /// The owner's pid and the instance it serves.
    public let ownerPID: Int32
    public let instance: String

    private init(socket: ControlSocket, ownerPID: Int32, instance: String) {
        self.socket = socket
        self.ownerPID = ownerPID
        self.instance = instance
    }

    /// Connects to the owner of `instance`; nil when no process listens on its socket.
    /// A refusal by the owner (another uid, another protocol version) throws its error.
    public static func connect(instance: String, timeout: Double = 30) throws -> ControlClient? {
        let path = ControlSocket.path(instance: instance)
        guard let s = try ControlSocket.connect(path) else { return nil }
        do {
            do {
                try s.send(.hello(version: ControlMessage.version, pid: UInt32(getpid())), timeout: timeout)
            } catch is ControlLost {
                // An owner that refuses us says why and closes without reading: the reason is
                // waiting to be read even though our greeting could not be sent.
            }
            switch try s.receive(timeout: timeout) {
            case .welcome(let v, let pid, let inst):
                guard v == ControlMessage.version else {
                    throw JetError(.instanceUnavailable, "the owner of \(instance) (pid \(pid)) speaks control protocol version \(v), "
                        + "this program version \(ControlMessage.version); use the same version of the tool as the owner")
                }
                return ControlClient(socket: s, ownerPID: Int32(bitPattern: pid), instance: inst)
            case .error(let code, let message):
                throw JetError(JetError.Code(rawValue: code) ?? .instanceUnavailable, message)
            default:
                throw JetError(.instanceUnavailable, "the process listening on \(path) answered the greeting with something else; "
                    + "it is not an owner this program can talk to")
            }
        } catch let e as ControlLost {
            // The owner stopped (killed, shutting down) between accepting and answering: as for
            // a request it stopped serving (README "Exit status and errors").
            throw JetError(.backupAbortByServer, "the process that owns \(instance) stopped serving during the greeting on \(path) "
                + "(\(e.message)); nothing was done")
        }
    }

    /// The owner of the instance at `instance` went away; what a request that was running
    /// then reports.
    public func lostError(_ e: ControlLost, doing what: String) -> JetError {
        JetError(.backupAbortByServer, "the process that owns \(instance) (pid \(ownerPID)) stopped serving while \(what) (\(e.message)); "
            + "nothing of it was recorded in the instance")
    }

    public func close() { socket.close() }
}
