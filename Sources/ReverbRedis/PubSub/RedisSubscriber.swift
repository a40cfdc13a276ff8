public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// Subscribes to a set of channels over one Redis connection, reconnecting forever and
/// subscribing again after each reconnection (spec `scaling.md` §5.5). The set starts as
/// `channels` and changes with `subscribe(_:)` / `unsubscribe(_:)` (interest routing): a change
/// goes to Redis at once when connected, and every reconnection subscribes the set as it then is.
///
/// Messages go to `onMessage` on the connection's event loop, in the order Redis sent them; keep
/// that callback short (hand off to a queue or `AsyncStream` for slow work). Messages published
/// while the subscriber is disconnected are lost, as pub/sub has no replay.
///
/// Call `run()` in a long-lived task; cancel that task to stop.
public final class RedisSubscriber: Sendable {
    private let loop: RedisReconnectLoop
    private let onMessage: @Sendable (RedisPubSubMessage) -> Void
    private let subscriptions: NIOLockedValueBox<Subscriptions>
    /// One shard of a Redis Cluster: `SSUBSCRIBE`/`SUNSUBSCRIBE`, one channel per command (a
    /// command's channels must share a slot), each answered.
    private let sharded: Bool
    /// Sharded: told of wanted channels this shard's node refused (`-MOVED`) or dropped (an unasked
    /// `sunsubscribe`); they stay wanted but unsubscribed until `subscribeMissing()` or a reconnect.
    private let onMisrouted: (@Sendable ([String]) -> Void)?
    private let logger: Logger

    /// The wanted channels and what the current connection was told. Commands are written under
    /// the lock, so Redis sees the subscribes and unsubscribes of a channel in the order they were asked.
    private struct Subscriptions {
        var wanted: Set<String>
        /// The connection in use, from the moment its first subscription is confirmed.
        var connection: RedisConnection?
        /// Channels subscribed on the connection being prepared or in use.
        var sent: Set<String> = []
    }

    /// The channels subscribed to from the start (never unsubscribed by a reconnect).
    public let channels: [String]

    /// The channels wanted now: `channels` and those added by `subscribe(_:)`, less those removed.
    public var wantedChannels: Set<String> { subscriptions.withLockedValue { $0.wanted } }

    /// - Parameters:
    ///   - configuration: Where Redis is.
    ///   - channels: Channels to subscribe to; at least one.
    ///   - options: Role, client name, backoff and health checks; `role` defaults to `subscriber` here.
    ///   - onLinkStateChange: Called after each change of `linkState`; `.connected` means subscribed.
    ///   - onMessage: Receives each published message.
    public convenience init(
        configuration: RedisConnectionConfiguration,
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        self.init(
            endpoint: FixedRedisEndpoint(configuration), channels: channels, eventLoopGroup: eventLoopGroup,
            options: options, logger: logger, onLinkStateChange: onLinkStateChange, onMessage: onMessage)
    }

    /// A subscriber whose every connection attempt goes where `endpoint` says (Sentinel, a cluster slot).
    public convenience init(
        endpoint: any RedisEndpointResolver,
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        precondition(!channels.isEmpty, "RedisSubscriber needs at least one channel")
        self.init(
            endpoint: endpoint, channels: channels, sharded: false, eventLoopGroup: eventLoopGroup, options: options,
            logger: logger, onLinkStateChange: onLinkStateChange, onMisrouted: nil, onMessage: onMessage)
    }

    /// Any subscriber; `sharded` makes it one shard's of a `RedisClusterSubscriber` (which may
    /// start with no channel).
    init(
        endpoint: any RedisEndpointResolver,
        channels: [String],
        sharded: Bool,
        eventLoopGroup: any EventLoopGroup,
        options: RedisClientOptions,
        logger: Logger,
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)?,
        onMisrouted: (@Sendable ([String]) -> Void)?,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        self.sharded = sharded
        self.onMisrouted = onMisrouted
        self.logger = logger
        self.channels = channels
        self.onMessage = onMessage
        self.subscriptions = NIOLockedValueBox(Subscriptions(wanted: Set(channels)))
        self.loop = RedisReconnectLoop(
            endpoint: endpoint, eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: onLinkStateChange)
    }

    /// Whether the subscription is in place, and since when.
    public var linkState: RedisLinkState { loop.linkState }

    /// Connections made after the first.
    public var reconnectCount: Int { loop.tracker.reconnectCount }

    /// Adds `channels` to the set; subscribes them now when connected.
    public func subscribe(_ channels: [String]) {
        subscriptions.withLockedValue { state in
            let new = channels.filter { state.wanted.insert($0).inserted }
            guard let connection = state.connection else { return }
            let unsent = new.filter { state.sent.insert($0).inserted }
            send(subscribe: unsent, unsubscribe: [], on: connection)
        }
    }

    /// Removes `channels` from the set; unsubscribes them now when connected.
    public func unsubscribe(_ channels: [String]) {
        subscriptions.withLockedValue { state in
            let gone = channels.filter { state.wanted.remove($0) != nil }
            guard let connection = state.connection else { return }
            let sent = gone.filter { state.sent.remove($0) != nil }
            send(subscribe: [], unsubscribe: sent, on: connection)
        }
    }

    /// Sharded: subscribes again, now, the wanted channels the connection lost or was refused.
    func subscribeMissing() {
        subscriptions.withLockedValue { state in
            guard let connection = state.connection else { return }
            let missing = state.wanted.subtracting(state.sent)
            state.sent.formUnion(missing)
            send(subscribe: Array(missing), unsubscribe: [], on: connection)
        }
    }

    /// Wanted channels not subscribed on the connection in use (all of them while disconnected).
    var unsubscribedChannels: Set<String> {
        subscriptions.withLockedValue { state in
            state.connection == nil ? state.wanted : state.wanted.subtracting(state.sent)
        }
    }

    /// The server the subscribed connection goes to, if any.
    var connectedEndpoint: RedisConnectionConfiguration.Endpoint? {
        subscriptions.withLockedValue { $0.connection?.endpoint }
    }

    /// Closes the subscribed connection when it goes anywhere but `endpoint` (the shard's primary
    /// moved); the reconnect loop asks its resolver where to go now and subscribes everything wanted.
    func closeConnection(unlessTo endpoint: RedisConnectionConfiguration.Endpoint?) {
        let stale: RedisConnection? = subscriptions.withLockedValue { state in
            guard let connection = state.connection, connection.endpoint != endpoint else { return nil }
            return connection
        }
        stale?.channel.close(promise: nil)
    }

    /// Writes the commands for a change of the set; called under the lock, so Redis sees each
    /// channel's subscribes and unsubscribes in the order they were asked.
    private func send(subscribe added: [String], unsubscribe removed: [String], on connection: RedisConnection) {
        guard sharded else {
            connection.enqueueSubscription("SUBSCRIBE", channels: added)
            connection.enqueueSubscription("UNSUBSCRIBE", channels: removed)
            return
        }
        for channel in added {
            let promise = connection.channel.eventLoop.makePromise(of: RESPValue.self)
            promise.futureResult.whenSuccess { reply in
                if case .error(let text) = reply { self.refused([channel], text, on: connection) }
            }
            connection.enqueueSubscription("SSUBSCRIBE", channels: [channel], promise: promise)
        }
        for channel in removed { connection.enqueueSubscription("SUNSUBSCRIBE", channels: [channel]) }
    }

    /// Sharded: the node refused to subscribe `channels` (or dropped them): they are unsubscribed
    /// here until subscribed again; a redirect tells the owner, anything else is logged.
    private func refused(_ channels: [String], _ text: String?, on connection: RedisConnection) {
        let stillWanted = subscriptions.withLockedValue { state in
            if state.connection === connection || state.connection == nil {
                for channel in channels { state.sent.remove(channel) }
            }
            return channels.filter { state.wanted.contains($0) }
        }
        if let text, RedisClusterRedirect(errorReply: text, host: connection.endpoint.host) == nil {
            logger.warning("Redis refused SSUBSCRIBE: \(text)", metadata: ["channels": "\(channels)"])
        }
        if !stillWanted.isEmpty { onMisrouted?(stillWanted) }
    }

    /// Connects, subscribes and delivers messages until the calling task is cancelled. Call it once.
    public func run() async {
        let subscriptions = self.subscriptions
        let sharded = self.sharded
        var onDropped: (@Sendable (String) -> Void)?
        if sharded { onDropped = { channel in self.dropped(channel) } }
        await loop.run(
            onMessage: onMessage,
            onShardUnsubscribed: onDropped,
            prepare: { connection throws(RedisConnectionError) in
                let channels = subscriptions.withLockedValue { state in
                    state.connection = nil
                    state.sent = state.wanted
                    return Array(state.wanted)
                }
                if sharded {
                    try await self.subscribeSharded(channels, on: connection)
                } else {
                    try await connection.subscribe(to: channels)
                }
            },
            up: { connection in
                // What changed while the first SUBSCRIBE was out goes now.
                subscriptions.withLockedValue { state in
                    state.connection = connection
                    let added = state.wanted.subtracting(state.sent)
                    let removed = state.sent.subtracting(state.wanted)
                    state.sent = state.wanted
                    self.send(subscribe: Array(added), unsubscribe: Array(removed), on: connection)
                }
            },
            down: {
                subscriptions.withLockedValue { state in
                    state.connection = nil
                    state.sent = []
                }
            }
        )
    }

    /// Sharded: `SSUBSCRIBE`s each channel, pipelined, and waits for every answer. A redirect marks
    /// the channel misrouted instead of failing the connection (another shard owns it now).
    private func subscribeSharded(_ channels: [String], on connection: RedisConnection)
        async throws(RedisConnectionError)
    {
        let eventLoop = connection.channel.eventLoop
        let replies = channels.map { channel in
            let promise = eventLoop.makePromise(of: RESPValue.self)
            connection.enqueueSubscription("SSUBSCRIBE", channels: [channel], promise: promise)
            return promise.futureResult
        }
        var misrouted: [String] = []
        for (channel, reply) in zip(channels, replies) {
            let value: RESPValue
            do {
                value = try await reply.get()
            } catch {
                throw error as? RedisConnectionError
                    ?? RedisConnectionError(.connectionClosed, "SSUBSCRIBE failed at \(connection.endpoint): \(error)")
            }
            guard case .error(let text) = value else { continue }
            guard RedisClusterRedirect(errorReply: text, host: connection.endpoint.host) != nil else {
                throw RedisConnectionError(
                    .errorReply, "Redis at \(connection.endpoint) refused SSUBSCRIBE \(channel): \(text)")
            }
            misrouted.append(channel)
        }
        if !misrouted.isEmpty {
            subscriptions.withLockedValue { state in
                for channel in misrouted { state.sent.remove(channel) }
            }
            onMisrouted?(misrouted)
        }
    }

    /// Sharded: the node dropped `channel` unasked (its slot moved, or the node became a replica).
    private func dropped(_ channel: String) {
        let wanted = subscriptions.withLockedValue { state in
            state.sent.remove(channel)
            return state.wanted.contains(channel)
        }
        if wanted { onMisrouted?([channel]) }
    }
}
