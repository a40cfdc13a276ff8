public import Logging
public import NIOCore
public import NIOPosix

/// Subscribes to a fixed set of channels over one Redis connection, reconnecting forever and
/// subscribing again after each reconnection (spec `scaling.md` §5.5).
///
/// Messages go to `onMessage` on the connection's event loop, in the order Redis sent them; keep
/// that callback short (hand off to a queue or `AsyncStream` for slow work). Messages published
/// while the subscriber is disconnected are lost, as pub/sub has no replay.
///
/// Call `run()` in a long-lived task; cancel that task to stop.
public final class RedisSubscriber: Sendable {
    private let loop: RedisReconnectLoop
    private let onMessage: @Sendable (RedisPubSubMessage) -> Void

    /// The channels subscribed to.
    public let channels: [String]

    /// - Parameters:
    ///   - configuration: Where Redis is.
    ///   - channels: Channels to subscribe to; at least one.
    ///   - options: Role, client name, backoff and health checks; `role` defaults to `subscriber` here.
    ///   - onLinkStateChange: Called after each change of `linkState`; `.connected` means subscribed.
    ///   - onMessage: Receives each published message.
    public init(
        configuration: RedisConnectionConfiguration,
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        precondition(!channels.isEmpty, "RedisSubscriber needs at least one channel")
        self.channels = channels
        self.onMessage = onMessage
        self.loop = RedisReconnectLoop(
            configuration: configuration, eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: onLinkStateChange)
    }

    /// Whether the subscription is in place, and since when.
    public var linkState: RedisLinkState { loop.linkState }

    /// Connects, subscribes and delivers messages until the calling task is cancelled. Call it once.
    public func run() async {
        let channels = self.channels
        await loop.run(
            onMessage: onMessage,
            prepare: { connection throws(RedisConnectionError) in
                try await connection.subscribe(to: channels)
            },
            up: { _ in },
            down: {}
        )
    }
}
