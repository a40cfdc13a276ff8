import ReverbRedis

/// What reads the cluster bus for a `ClusterNode`: a Redis pub/sub subscriber (`scaling.transport`
/// `pubsub`) or a Redis Stream reader (`streams`).
protocol BusReader: Sendable {
    /// Whether it is connected and receiving, and since when.
    var linkState: RedisLinkState { get }

    /// Connections made after the first.
    var reconnectCount: Int { get }

    /// Connects and receives until the calling task is cancelled.
    func run() async
}

extension RedisSubscriber: BusReader {}

/// Any topology's subscriber reads the bus (the concrete one is chosen by `RedisClientFactory`).
struct BusSubscriberReader: BusReader {
    let subscriber: any RedisBusSubscriber
    var linkState: RedisLinkState { subscriber.linkState }
    var reconnectCount: Int { subscriber.reconnectCount }
    func run() async { await subscriber.run() }
}

extension RedisStreamReader: BusReader {}
