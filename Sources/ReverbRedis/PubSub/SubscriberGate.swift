public import NIOCore

/// Pub/sub only: after each reconnect (not the first connect) a publisher holds its queue back until the channel has as
/// many subscribers as the cluster has nodes, or `maximumHold` passed.
///
/// `PUBLISH` reaches only the subscribers connected at that moment. After a Redis outage every
/// node's publisher and subscriber reconnect with their own backoff; a publisher that is back first
/// would send its whole queue to a channel nobody listens to yet (seen in the `redis-outage`
/// bench: 3,000 queued events lost at the other node). Holding costs nothing when the subscribers
/// are already there: one `PUBSUB NUMSUB` round trip.
public struct SubscriberGate: Sendable {
    /// The channel the publisher publishes on.
    public var channel: String
    /// How many subscribers to wait for: the nodes the cluster knows, this one included. Asked on
    /// every poll, so a node that went away meanwhile stops being waited for.
    public var expectedSubscribers: @Sendable () -> Int
    /// The longest hold; then the queue goes out whoever listens (a node that died during the
    /// outage never subscribes again).
    public var maximumHold: TimeAmount
    /// Time between two `PUBSUB NUMSUB` while holding.
    public var pollInterval: TimeAmount

    /// Redis Cluster, a shard other than the control channel's: wait instead until every channel at
    /// the head of the queue (up to `watchedChannelLimit`) has a subscriber again. Interest-routing
    /// buckets have no known subscriber count (only interested nodes listen), and a channel nobody
    /// listens to holds the queue until `maximumHold`.
    var watchesQueuedChannels = false

    /// Distinct queued channels asked about per poll.
    static let watchedChannelLimit = 16

    public init(
        channel: String, expectedSubscribers: @escaping @Sendable () -> Int, maximumHold: TimeAmount = .seconds(10),
        pollInterval: TimeAmount = .milliseconds(100)
    ) {
        self.channel = channel
        self.expectedSubscribers = expectedSubscribers
        self.maximumHold = maximumHold
        self.pollInterval = pollInterval
    }
}
