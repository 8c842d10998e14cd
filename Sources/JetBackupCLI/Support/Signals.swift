#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT/SIGTERM during a backup or restore: set a flag the command polls between chunks, so it stops
/// cleanly (undoing its work) and exits 75 with JET_errTermInProgress.
enum Signals {
    static let interrupted = Atomic<Bool>(false)

    static func install() {
        // A parent may have started us with these blocked (a blocked signal would never
        // reach the handler): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGINT) { _ in Signals.interrupted.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in Signals.interrupted.store(true, ordering: .relaxed) }
    }

    /// This process got SIGINT/SIGTERM, or the client of a served command interrupted it.
    static var wasInterrupted: Bool { interrupted.load(ordering: .relaxed) || (Served.current?.command.isInterrupted ?? false) }
}
