import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Frames queued in every inbox of the node but not yet written, and the intake paused on them
/// (`style.md` §4.7): when delivery falls behind, publishing HTTP connections stop being read
/// until the shards catch up, so overload turns into push-back instead of a growing queue.
final class FanoutBacklog: Sendable {
    /// Above this many queued frames, publishers are paused (about 1 s of fan-out work here). A
    /// tighter bound starves the drains of batches: `reverb-bench fanout`, 10,000 subscribers, max
    /// rate, measured 340–357k deliveries/s (p99 1.0–1.3 s) with 65,536 and 391–412k (p99 1.0 s)
    /// with 524,288.
    let highWaterMark: Int
    /// Paused publishers resume once the backlog is below this.
    let lowWaterMark: Int

    private let queued = Atomic<Int>(0)
    private let waiters = NIOLockedValueBox<[(any EventLoop, @Sendable () -> Void)]>([])

    init(highWaterMark: Int = 524_288, lowWaterMark: Int = 131_072) {
        self.highWaterMark = highWaterMark
        self.lowWaterMark = lowWaterMark
    }

    /// Frames waiting to be written.
    var count: Int { queued.load(ordering: .relaxed) }

    /// True when publishers should stop sending.
    var isOverloaded: Bool { count > highWaterMark }

    func add(_ frames: Int) {
        queued.wrappingAdd(frames, ordering: .relaxed)
    }

    func remove(_ frames: Int) {
        let now = queued.wrappingSubtract(frames, ordering: .relaxed).newValue
        guard now < lowWaterMark else { return }
        let resumed = waiters.withLockedValue { waiters -> [(any EventLoop, @Sendable () -> Void)] in
            guard !waiters.isEmpty, queued.load(ordering: .relaxed) < lowWaterMark else { return [] }
            defer { waiters.removeAll() }
            return waiters
        }
        for (loop, resume) in resumed { loop.execute(resume) }
    }

    /// Calls `resume` on `eventLoop` once the backlog is below the low-water mark (at once if it
    /// already is).
    func whenDrained(on eventLoop: any EventLoop, _ resume: @escaping @Sendable () -> Void) {
        let now = waiters.withLockedValue { waiters -> Bool in
            if queued.load(ordering: .relaxed) < lowWaterMark { return true }
            waiters.append((eventLoop, resume))
            return false
        }
        if now { eventLoop.execute(resume) }
    }
}
