import Logging
import NIOCore
import Synchronization

/// This node's delivery engine: one `ShardInbox` per event loop, the broadcast sequence that orders
/// broadcasts against subscriptions, and the back-pressure backlog (`style.md` §4).
final class Fanout: Sendable {
    let inboxes: [ShardInbox]
    let backlog: FanoutBacklog
    /// Orders broadcasts against subscriptions (`Delivery.sequence`).
    private let sequence = Atomic<UInt64>(0)

    /// - Parameter appIndices: `AppContext.index` by app id, for the loops' broadcast counters.
    init(
        eventLoops: [any EventLoop], logger: Logger, backlog: FanoutBacklog = FanoutBacklog(),
        appIndices: [String: Int] = [:]
    ) {
        self.backlog = backlog
        self.inboxes = eventLoops.map {
            ShardInbox(eventLoop: $0, backlog: backlog, logger: logger, appIndices: appIndices)
        }
    }

    /// The inbox of `eventLoop`.
    func inbox(for eventLoop: any EventLoop) -> ShardInbox? {
        inboxes.first { $0.eventLoop === eventLoop }
    }

    /// The sequence number of a new broadcast.
    func nextSequence() -> UInt64 {
        sequence.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
    }

    /// The last sequence number issued: a subscription recorded now sees only later broadcasts.
    func currentSequence() -> UInt64 {
        sequence.load(ordering: .sequentiallyConsistent)
    }

    /// Hands `frame` to every loop with subscribers of the channel.
    /// - Parameter sequence: the broadcast's sequence number when the caller already drew it.
    func broadcast(_ key: ChannelKey, frame: OutboundFrame, except exceptSocketID: String?, sequence: UInt64? = nil) {
        let delivery = Delivery(
            key: key, frame: frame, exceptSocketID: exceptSocketID, sequence: sequence ?? nextSequence())
        for inbox in inboxes { inbox.enqueue(delivery) }
    }

    /// Frames not delivered so far: inboxes full, and subscribers that were not reading.
    func droppedDeliveries() -> EventLoopFuture<(inboxFull: Int, slowConsumer: Int)> {
        let inboxFull = inboxes.reduce(0) { $0 + $1.droppedCount }
        return onEveryShard { $0.slowConsumerDrops }.map { (inboxFull, $0.reduce(0, +)) }
    }

    /// Runs `body` on every loop's shard and collects the results.
    func onEveryShard<T: Sendable>(_ body: @escaping @Sendable (LoopShard) -> T) -> EventLoopFuture<[T]> {
        EventLoopFuture.whenAllSucceed(inboxes.map { $0.submit(body) }, on: inboxes[0].eventLoop)
    }
}
