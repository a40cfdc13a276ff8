import NIOCore
import Synchronization

/// One per event loop: the trigger-to-receive latencies its subscribers saw.
///
/// `@unchecked Sendable` because it is shared by reference with the handlers of one loop: it is
/// only touched on `eventLoop`, and read at the end through `eventLoop.submit`.
final class LoopLatencyRecorder: @unchecked Sendable {
    let eventLoop: any EventLoop
    var histogram = LatencyHistogram()
    /// Deliveries counted on this loop but not yet added to the shared counter.
    var unflushedDeliveries = 0

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Adds the deliveries counted since the last call to the shared counter (once per read batch).
    func publishDeliveries(to stats: DeliveryStats) {
        guard unflushedDeliveries > 0 else { return }
        stats.delivered.add(unflushedDeliveries, ordering: .relaxed)
        unflushedDeliveries = 0
    }
}

/// What every subscriber connection reports into: counters shared across loops (touched once per
/// read batch or per connection event, never per frame) and one latency recorder per loop.
final class DeliveryStats: Sendable {
    /// Event frames received by all subscribers.
    let delivered = Atomic<Int>(0)
    /// Subscribers whose subscription was confirmed.
    let subscribed = Atomic<Int>(0)
    /// Subscriber connections the server closed or that failed after subscribing.
    let disconnected = Atomic<Int>(0)
    /// `pusher:error` frames or Redis error replies received by subscribers.
    let errors = Atomic<Int>(0)
    private let recorders: [ObjectIdentifier: LoopLatencyRecorder]

    init(group: any EventLoopGroup) {
        var recorders: [ObjectIdentifier: LoopLatencyRecorder] = [:]
        for loop in group.makeIterator() {
            recorders[ObjectIdentifier(loop)] = LoopLatencyRecorder(eventLoop: loop)
        }
        self.recorders = recorders
    }

    func recorder(for loop: any EventLoop) -> LoopLatencyRecorder {
        recorders[ObjectIdentifier(loop)]!
    }

    /// Merges the per-loop histograms, each read on its own loop.
    func latencies() async throws -> LatencyHistogram {
        var merged = LatencyHistogram()
        for recorder in recorders.values {
            let histogram = try await recorder.eventLoop.submit { recorder.histogram }.get()
            merged.merge(histogram)
        }
        return merged
    }

    /// Clears the per-loop histograms (after warm-up).
    func resetLatencies() async throws {
        for recorder in recorders.values {
            try await recorder.eventLoop.submit { recorder.histogram = LatencyHistogram() }.get()
        }
    }
}
