public import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// Hears bus channels on a Redis Cluster with sharded pub/sub: each channel is `SSUBSCRIBE`d on the
/// primary owning its slot, through one `RedisSubscriber` per shard (created when a channel first
/// routes there; named by the shard's lowest slot, so it follows a failover by reconnecting).
///
/// Channels follow the slot map: when a node refuses a channel (`-MOVED`) or drops it (the unasked
/// `sunsubscribe` Redis sends when a slot migrates away or the node becomes a replica), the map is
/// refreshed and the channel subscribed where it now lives; shard connections to a node that no
/// longer serves their shard are closed and reconnect to the new primary. While a channel is
/// between shards its messages are lost, as pub/sub has no replay.
///
/// `linkState` is the worst shard's. Shared state (the wanted channels, which shard holds each, the
/// shard subscribers) sits in one `NIOLockedValueBox`; shard subscribers are called under it (their
/// own lock comes after this one, never before), so one channel's subscribes and unsubscribes reach
/// Redis in the order they were asked.
public final class RedisClusterSubscriber: RedisBusSubscriber {
    private struct State {
        var wanted: Set<String> = []
        /// Channel → the anchor of the shard subscriber holding it.
        var assigned: [String: Int] = [:]
        var shards: [Int: RedisSubscriber] = [:]
        var retryScheduled = false
        var stopped = false
        /// Since when a wanted channel has had no shard (nil while every one has one).
        var unplacedSince: ContinuousClock.Instant?
    }

    private let topology: RedisClusterTopology
    private let eventLoopGroup: any EventLoopGroup
    private let options: RedisClientOptions
    private let logger: Logger
    private let onLinkStateChange: (@Sendable (RedisLinkState) -> Void)?
    private let onMessage: @Sendable (RedisPubSubMessage) -> Void
    private let state = NIOLockedValueBox(State())
    private let created = ContinuousClock.now
    private let started: (stream: AsyncStream<RedisSubscriber>, continuation: AsyncStream<RedisSubscriber>.Continuation)

    public init(
        topology: RedisClusterTopology,
        channels: [String],
        eventLoopGroup: any EventLoopGroup,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) {
        self.topology = topology
        self.eventLoopGroup = eventLoopGroup
        self.options = options
        self.logger = logger
        self.onLinkStateChange = onLinkStateChange
        self.onMessage = onMessage
        self.started = AsyncStream.makeStream(of: RedisSubscriber.self, bufferingPolicy: .unbounded)
        state.withLockedValue { $0.wanted = Set(channels) }
    }

    /// Down while a wanted channel has no shard yet (no slot map, or its slot has no primary),
    /// else the worst shard's state.
    public var linkState: RedisLinkState {
        let (links, unplacedSince) = state.withLockedValue { state in
            (state.shards.values.map(\.linkState), state.unplacedSince)
        }
        let worst = RedisShardLink.worst(links, empty: created)
        if let unplacedSince, worst.isConnected { return .disconnected(since: unplacedSince) }
        return worst
    }

    public var shardLinks: [RedisShardLink] {
        RedisShardLink.links(state.withLockedValue { $0.shards.mapValues(\.linkState) }, map: topology.currentMap)
    }

    public var reconnectCount: Int { state.withLockedValue { $0.shards.values.reduce(0) { $0 + $1.reconnectCount } } }

    /// Wanted channels not subscribed now on the shard owning them (for tests and logs).
    public var unsubscribedChannels: Set<String> {
        state.withLockedValue { state in
            var missing = state.wanted.filter { state.assigned[$0] == nil }
            for subscriber in state.shards.values { missing.formUnion(subscriber.unsubscribedChannels) }
            return missing
        }
    }

    public func subscribe(_ channels: [String]) {
        let map = topology.currentMap
        let unplaced = state.withLockedValue { state in
            var unplaced = false
            for channel in channels where state.wanted.insert(channel).inserted {
                unplaced = !place(channel, map: map, &state) || unplaced
            }
            return unplaced && scheduleRetry(&state)
        }
        if unplaced { retry(after: .zero) }
    }

    public func unsubscribe(_ channels: [String]) {
        state.withLockedValue { state in
            for channel in channels where state.wanted.remove(channel) != nil {
                if let anchor = state.assigned.removeValue(forKey: channel) {
                    state.shards[anchor]?.unsubscribe([channel])
                }
            }
            noteUnplaced(&state)
        }
    }

    /// Runs every shard subscriber (those created later too) and the periodic slot map refresh,
    /// until the calling task is cancelled. Call it once.
    public func run() async {
        let observer = topology.addObserver { [weak self] map in self?.follow(map) }
        defer {
            topology.removeObserver(observer)
            state.withLockedValue { $0.stopped = true }
        }
        let map = await topology.map(maxAge: topology.attemptMaxAge)
        let unplaced = state.withLockedValue { state in
            var unplaced = false
            for channel in state.wanted where state.assigned[channel] == nil {
                unplaced = !place(channel, map: map, &state) || unplaced
            }
            return unplaced && scheduleRetry(&state)
        }
        if unplaced { retry(after: topology.minimumRefreshInterval) }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.topology.refreshPeriodically() }
            for await subscriber in started.stream {
                group.addTask { await subscriber.run() }
            }
        }
    }

    /// Subscribes `channel` on the shard `map` says owns it; false when none does. Under the lock.
    private func place(_ channel: String, map: RedisClusterSlotMap?, _ state: inout State) -> Bool {
        guard let anchor = map?.shard(forKey: channel)?.anchor else { return false }
        if let previous = state.assigned[channel] {
            if previous == anchor { return true }
            state.shards[previous]?.unsubscribe([channel])
        }
        state.assigned[channel] = anchor
        subscriber(anchor: anchor, &state).subscribe([channel])
        return true
    }

    /// The shard subscriber named `anchor`, created (and started) on first use. Under the lock.
    private func subscriber(anchor: Int, _ state: inout State) -> RedisSubscriber {
        if let existing = state.shards[anchor] { return existing }
        let subscriber = RedisSubscriber(
            endpoint: RedisClusterSlotEndpoint(topology: topology, slot: anchor), channels: [], sharded: true,
            eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: { [weak self] _ in self?.shardLinkChanged() },
            onMisrouted: { [weak self] channels in self?.misrouted(channels) }, onMessage: onMessage)
        state.shards[anchor] = subscriber
        started.continuation.yield(subscriber)
        return subscriber
    }

    /// Whether the caller should start a retry (none is scheduled yet); notes whether a wanted channel
    /// is without a shard. Under the lock, after a change of the assignment.
    private func scheduleRetry(_ state: inout State) -> Bool {
        noteUnplaced(&state)
        guard !state.retryScheduled, !state.stopped else { return false }
        state.retryScheduled = true
        return true
    }

    /// Records since when a wanted channel has had no shard. Under the lock.
    private func noteUnplaced(_ state: inout State) {
        if state.wanted.count == state.assigned.count {
            state.unplacedSince = nil
        } else if state.unplacedSince == nil {
            state.unplacedSince = .now
        }
    }

    private func shardLinkChanged() {
        onLinkStateChange?(linkState)
    }

    /// A shard's node refused or dropped `channels`: find where they live now.
    private func misrouted(_ channels: [String]) {
        logger.debug("Redis Cluster moved sharded channels", metadata: ["channels": "\(channels.prefix(10))"])
        if state.withLockedValue({ scheduleRetry(&$0) }) { retry(after: .zero) }
    }

    /// Refreshes the slot map and follows it; again later while a wanted channel is not subscribed.
    private func retry(after delay: Duration) {
        Task { [weak self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            guard let self, !self.state.withLockedValue({ $0.stopped }) else { return }
            let map = await self.topology.refresh()
            self.state.withLockedValue { $0.retryScheduled = false }
            if let map { self.follow(map) }
            // Give the new subscriptions a round trip before checking again.
            try? await Task.sleep(for: self.topology.minimumRefreshInterval)
            if !self.unsubscribedChannels.isEmpty, self.state.withLockedValue({ self.scheduleRetry(&$0) }) {
                self.retry(after: .zero)
            }
        }
    }

    /// Moves each wanted channel to the shard `map` says owns it, closes shard connections to nodes
    /// that no longer serve their shard, and subscribes again what a node dropped.
    private func follow(_ map: RedisClusterSlotMap) {
        let shards = state.withLockedValue { state in
            for channel in state.wanted {
                if !place(channel, map: map, &state), let anchor = state.assigned.removeValue(forKey: channel) {
                    state.shards[anchor]?.unsubscribe([channel])
                }
            }
            noteUnplaced(&state)
            return state.shards
        }
        for (anchor, subscriber) in shards {
            subscriber.closeConnection(unlessTo: map.shard(anchor: anchor)?.primary)
            subscriber.subscribeMissing()
        }
    }
}
