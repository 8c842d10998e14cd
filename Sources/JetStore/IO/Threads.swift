#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CFileIO

/// Starts detached pthreads (the engine's and the tool's background workers) without
/// Foundation's `Thread`, whose classes bring CoreFoundation into the binary.
public enum Threads {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Runs `body` on a new detached thread named `name` (Linux keeps 15 bytes);
    /// `stackSize` 0 keeps the system's default. Stops the process if the thread cannot be
    /// created (out of memory or threads: nothing sensible can go on).
    public static func start(name: String, stackSize: Int = 0, _ body: @escaping @Sendable () -> Void) {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        if stackSize > 0 { pthread_attr_setstacksize(&attr, max(stackSize, Int(PTHREAD_STACK_MIN))) }
        let box = Unmanaged.passRetained(Box({
            jb_set_thread_name(name)
            body()
        }))
        #if canImport(Darwin)
        var thread: pthread_t?
        #else
        var thread = pthread_t()
        #endif
        let rc = pthread_create(&thread, &attr, { raw in
            #if canImport(Darwin)
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            #else
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            #endif
            box.body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            fatalError("pthread_create failed: \(String(cString: strerror(rc)))")
        }
    }
}
