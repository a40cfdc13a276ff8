public import Logging
public import NIOCore

/// The bus publisher of a Sentinel deployment: a `RedisPublisher` whose connections go to the
/// primary the sentinels name, and, beside it in `run()`, the `RedisSentinelWatcher` that follows
/// `+switch-master` for every client of the same `RedisSentinelEndpoint` (the bus subscriber
/// included). Every guarantee of the publisher stays: bounded ordered queue, backoff, gate.
public final class RedisSentinelBusPublisher: RedisBusPublisher {
    /// The publisher doing the work.
    public let publisher: RedisPublisher
    /// The primary, shared with the factory's other clients.
    public let endpoint: RedisSentinelEndpoint
    private let watcher: RedisSentinelWatcher

    /// - Parameter watcherOptions: Role, backoff and health checks of the watcher's sentinel connection.
    public init(
        publisher: RedisPublisher, endpoint: RedisSentinelEndpoint, eventLoopGroup: any EventLoopGroup,
        watcherOptions: RedisClientOptions, logger: Logger
    ) {
        self.publisher = publisher
        self.endpoint = endpoint
        self.watcher = RedisSentinelWatcher(
            endpoint: endpoint, eventLoopGroup: eventLoopGroup, options: watcherOptions, logger: logger)
    }

    public func publish(_ payload: ByteBuffer, to channel: String) { publisher.publish(payload, to: channel) }
    public var linkState: RedisLinkState { publisher.linkState }
    public var reconnectCount: Int { publisher.reconnectCount }
    public var queuedMessageCount: Int { publisher.queuedMessageCount }
    public var droppedMessageCount: Int { publisher.droppedMessageCount }
    /// Whether the watcher listens to a sentinel now.
    public var watcherLinkState: RedisLinkState { watcher.linkState }

    /// Publishes and watches the sentinels until the calling task is cancelled. Call it once.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watcher.run() }
            group.addTask { await self.publisher.run() }
            await group.waitForAll()
        }
    }
}
