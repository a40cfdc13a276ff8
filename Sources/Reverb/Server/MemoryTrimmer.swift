import Logging
import ServiceLifecycle

#if os(Linux)
    internal import CMalloc
#endif

/// Gives freed heap back to the kernel after the number of connections fell a long way.
///
/// glibc keeps memory that connections freed in its arenas (one per event-loop thread) for reuse:
/// after a 10,000-connection soak the server's RSS stayed at 81 MiB where it started at 29 MiB,
/// although `malloc_trim(0)` showed that only 8.5 MiB of the anonymous memory was still in use. So
/// every `interval` the trimmer looks at the connection count and, when `Policy` says the load has
/// dropped, calls `malloc_trim(0)` from this task (never on an event loop: trimming large arenas
/// takes milliseconds and takes each arena's lock in turn). Elsewhere than Linux it does nothing.
final class MemoryTrimmer: Service {
    /// When a trim is worth it: the count fell by at least `minimumDrop` connections and to at
    /// most half of its peak since the last trim. Pure, so that it is tested without a clock.
    struct Policy: Equatable {
        var minimumDrop = 1000
        private(set) var peak = 0

        init(minimumDrop: Int = 1000) { self.minimumDrop = minimumDrop }

        /// Records `connections`; `true` when the heap should be trimmed now.
        mutating func observe(connections: Int) -> Bool {
            peak = max(peak, connections)
            guard peak - connections >= minimumDrop, connections <= peak / 2 else { return false }
            peak = connections
            return true
        }
    }

    private let connections: @Sendable () -> Int
    private let interval: Duration
    private let logger: Logger

    init(interval: Duration = .seconds(5), logger: Logger, connections: @escaping @Sendable () -> Int) {
        self.interval = interval
        self.logger = logger
        self.connections = connections
    }

    func run() async throws {
        // Sleeping is cancelled by a graceful shutdown as well as by cancellation: then it returns.
        try? await cancelWhenGracefulShutdown {
            var policy = Policy()
            while true {
                try await Task.sleep(for: self.interval)
                let count = self.connections()
                if policy.observe(connections: count) { self.trim(connections: count) }
            }
        }
    }

    private func trim(connections: Int) {
        #if os(Linux)
            let released = malloc_trim(0)
            logger.debug(
                "Trimmed the heap after connections dropped",
                metadata: ["connections": "\(connections)", "released": "\(released != 0)"])
        #endif
    }
}
