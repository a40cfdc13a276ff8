import ReverbRedis

/// What reads the cluster bus for a `ClusterNode`: a Redis pub/sub subscriber (`scaling.transport`
/// `pubsub`) or a Redis Stream reader (`streams`).
protocol BusReader: Sendable {
    /// Whether it is connected and receiving, and since when.
    var linkState: RedisLinkState { get }

    /// Connects and receives until the calling task is cancelled.
    func run() async
}

extension RedisSubscriber: BusReader {}

extension RedisStreamReader: BusReader {}
