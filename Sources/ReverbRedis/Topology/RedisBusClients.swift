public import NIOCore

/// What a cluster node publishes its bus messages through, whatever the topology: one
/// `RedisPublisher` for a server or a Sentinel primary, one per shard for a Redis Cluster.
public protocol RedisBusPublisher: AnyObject, Sendable {
    /// Publishes `payload` on `channel`, now or once the link is ready; never waits.
    func publish(_ payload: ByteBuffer, to channel: String)
    /// Whether every connection in use is ready, and since when (the worst of them).
    var linkState: RedisLinkState { get }
    /// Connections made after the first, over all connections.
    var reconnectCount: Int { get }
    /// Messages waiting to be written (and, for streams, written but unanswered).
    var queuedMessageCount: Int { get }
    /// Messages dropped because a queue was full.
    var droppedMessageCount: Int { get }
    /// One entry per shard connection (Redis Cluster); empty for a single connection.
    var shardLinks: [RedisShardLink] { get }
    /// Connects and publishes until the calling task is cancelled. Call it once.
    func run() async
}

/// What a cluster node hears the bus through: a changing set of pub/sub channels over one
/// connection (a server, a Sentinel primary) or one per shard (a Redis Cluster).
public protocol RedisBusSubscriber: AnyObject, Sendable {
    /// Whether every subscription is in place, and since when (the worst of them).
    var linkState: RedisLinkState { get }
    /// Connections made after the first, over all connections.
    var reconnectCount: Int { get }
    /// Adds channels; they are subscribed now when connected and after every reconnection.
    func subscribe(_ channels: [String])
    /// Removes channels.
    func unsubscribe(_ channels: [String])
    /// One entry per shard connection (Redis Cluster); empty for a single connection.
    var shardLinks: [RedisShardLink] { get }
    /// Connects, subscribes and delivers until the calling task is cancelled. Call it once.
    func run() async
}

extension RedisBusPublisher {
    public var shardLinks: [RedisShardLink] { [] }
}

extension RedisBusSubscriber {
    public var shardLinks: [RedisShardLink] { [] }
}

extension RedisPublisher: RedisBusPublisher {}

extension RedisSubscriber: RedisBusSubscriber {}
