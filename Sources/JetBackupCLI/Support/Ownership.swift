import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import JetBackup
import JetStore

/// What a command does when the process that owns its instance serves on the control socket
/// (README "Backups of a running instance"): runs in the owner (output, exit status and all
/// as if it ran here), backs up through the owner (the set written by this process), or is
/// refused because it cannot run against a live instance.
enum WhenOwned {
    case forward
    case backup
    /// The message, given the owner's pid.
    case refuse((Int32) -> String)
}

protocol InstanceCommand {
    /// The instance the command works on (nil: none).
    var ownedInstancePath: String? { get }
    var whenOwned: WhenOwned { get }
}

extension Put: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Get: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Delete: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Scan: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Load: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Digest: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Info: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Logs: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Check: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Events: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Db.Create: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }
extension Db.List: InstanceCommand { var ownedInstancePath: String? { instance.path }; var whenOwned: WhenOwned { .forward } }

extension Backup: InstanceCommand {
    var ownedInstancePath: String? { instance.path }
    /// A set is written by this process (its permissions, its destination, its credentials and
    /// key file), into a directory or a repository; a truncate-only backup writes none and runs
    /// in the owner.
    var whenOwned: WhenOwned { dir == nil && repo == nil ? .forward : .backup }
}

extension Config: InstanceCommand {
    var ownedInstancePath: String? { instance.path }
    var whenOwned: WhenOwned {
        guard value != nil else { return .forward }
        let path = instance.path
        return .refuse { pid in "\(path) is open in process \(pid), which serves it; parameters change only while no process has it open: "
            + "stop that process, change the parameter, and start it again" }
    }
}

extension Init: InstanceCommand {
    var ownedInstancePath: String? { path.map(Paths.absolute) ?? instance.path }
    var whenOwned: WhenOwned {
        let p = ownedInstancePath ?? ""
        return .refuse { pid in "\(p) is already an instance, open in process \(pid); use it, or choose another directory" }
    }
}

extension Restore: InstanceCommand {
    var ownedInstancePath: String? { Paths.absolute(to) }
    var whenOwned: WhenOwned {
        let p = Paths.absolute(to)
        return .refuse { pid in "\(p) is a live instance, open in process \(pid); a restore goes into a new directory: choose another TARGET" }
    }
}

/// The client side: finds the owner of a command's instance and runs the command through it.
enum Owner {
    /// Runs `command` through the process that owns its instance, if one serves; returns
    /// false when the command is to run here (no owner serves; a socket left by a process that
    /// is gone is removed first). Never returns when the command ran through the owner.
    static func runThrough(_ command: ParsableCommand, argv: [String]) -> Bool {
        guard let c = command as? InstanceCommand, let path = c.ownedInstancePath else { return false }
        let sock = ControlSocket.path(instance: path)
        guard PosixFileSystem().exists(sock) || PosixFileSystem().isSymlink(sock) || socketExists(sock) else { return false }
        let client: ControlClient
        do {
            guard let cl = try ControlClient.connect(instance: path) else {
                removeStale(sock, instance: path)
                return false
            }
            client = cl
        } catch let e as JetError {
            if e.code == .backupAbortByServer {
                // The owner went away during the greeting: once its lock is free (the kernel
                // releases it as the process ends) the command runs here, as with a stale socket.
                for _ in 0..<20 {
                    if removeStale(sock, instance: path) { return false }
                    usleep(50_000)
                }
            }
            // A peer the owner refuses: its uid is not the owner's (README: exit 77).
            try? CLI.run(json: jsonRequested(argv)) {
                throw StatusError(error: e, status: e.code == .fileAccessDenied || e.code == .permissionDenied ? 77 : nil)
            }
            return true
        } catch {
            return false
        }
        switch c.whenOwned {
        case .refuse(let why):
            try? CLI.run(json: jsonRequested(argv)) { throw JetError(.fileAccessDenied, why(client.ownerPID)) }
            exit(0)
        case .backup:
            CLI.remoteOwner = client
            return false
        case .forward:
            Forwarder(client: client).run(argv: argv)
        }
    }

    static func socketExists(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0
    }

    /// The socket of an owner that is gone (nobody listens and the lock is free) goes.
    /// Returns whether the lock was free (then the socket is gone too).
    @discardableResult
    static func removeStale(_ sock: String, instance: String) -> Bool {
        guard let lock = try? PosixFileSystem().lock(FilePaths.join(instance, FileNames.lock), owner: CLI.owner) else { return false }
        defer { lock.release() }
        _ = unlink(sock)
        return true
    }

    static func jsonRequested(_ argv: [String]) -> Bool { argv.contains("--json") }
}
