public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import Synchronization

/// Publishes bus messages to a Redis Cluster: `SPUBLISH` (or, in stream mode, `XADD`) on the
/// primary owning each channel's slot, through one `RedisPublisher` per shard, created when a
/// channel first routes there. Each keeps its own bounded, ordered queue, so one channel's
/// messages go out in order and one shard's outage holds only that shard's messages.
///
/// A shard publisher is named by its shard's lowest slot (`RedisClusterSlotMap.Shard.anchor`) and
/// reconnects to whichever node serves that slot now, so a failover keeps its queue. A message
/// refused with `-MOVED` or `-CLUSTERDOWN`, or whose slot has no primary for a moment, waits here
/// (bounded by the queue capacity, oldest dropped and counted) until the slot map is refreshed, then
/// goes to the new owner in order; `-ASK` sends `ASKING` and the command to the node named, once. A
/// message redirected `maximumRedirects` times is dropped and counted.
///
/// Shared state: the shard publishers and the waiting messages sit in one `NIOLockedValueBox`;
/// shard publishers are called under it (their own lock is taken after this one, never before), so
/// the order of one channel's messages is the order of `publish` calls.
public final class RedisClusterPublisher: RedisBusPublisher {
    /// A message redirected this many times is dropped.
    public static let maximumRedirects = 5
    /// After a reconnect, the longest a shard other than the control channel's holds its queue for
    /// the subscribers of the queued channels.
    public static let bucketHold = TimeAmount.seconds(3)
    /// The wait before a message refused with `-CLUSTERDOWN` or `-TRYAGAIN` is sent again.
    public static let tryAgainDelay = Duration.milliseconds(500)

    private struct Waiting {
        var message: RedisClusterRedirected
        var slot: Int
    }

    private struct State {
        var shards: [Int: RedisPublisher] = [:]
        var waiting = CircularBuffer<Waiting>()
        /// Messages of each slot in `waiting`: a slot's newer messages wait behind its older ones.
        var waitingPerSlot: [Int: Int] = [:]
        var retryScheduled = false
        /// `run()` returned: no more retries.
        var stopped = false
    }

    private let topology: RedisClusterTopology
    private let eventLoopGroup: any EventLoopGroup
    private let queueCapacity: Int
    private let options: RedisClientOptions
    private let mode: RedisPublisher.Mode
    private let gate: SubscriberGate?
    private let logger: Logger
    private let onLinkStateChange: (@Sendable (RedisLinkState) -> Void)?
    private let state = NIOLockedValueBox(State())
    private let dropped = Atomic<Int>(0)
    private let created = ContinuousClock.now
    private let started: (stream: AsyncStream<RedisPublisher>, continuation: AsyncStream<RedisPublisher>.Continuation)

    /// - Parameters:
    ///   - queueCapacity: Each shard's queue bound, and the bound on messages waiting for a route.
    ///   - gate: Held by the shard owning `gate.channel` after it reconnects (`PUBSUB SHARDNUMSUB`).
    ///   - onLinkStateChange: With a gate, each change of the control channel's shard; without one,
    ///     the worst shard's state after each change of any shard.
    public init(
        topology: RedisClusterTopology,
        eventLoopGroup: any EventLoopGroup,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        options: RedisClientOptions = RedisClientOptions(role: "publisher"),
        mode: RedisPublisher.Mode = .publish,
        gate: SubscriberGate? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) {
        precondition(queueCapacity >= 1, "queueCapacity must be at least 1")
        self.topology = topology
        self.eventLoopGroup = eventLoopGroup
        self.queueCapacity = queueCapacity
        self.options = options
        self.mode = mode
        self.gate = gate
        self.logger = logger
        self.onLinkStateChange = onLinkStateChange
        self.started = AsyncStream.makeStream(of: RedisPublisher.self, bufferingPolicy: .unbounded)
    }

    public var linkState: RedisLinkState {
        RedisShardLink.worst(state.withLockedValue { $0.shards.values.map(\.linkState) }, empty: created)
    }

    public var shardLinks: [RedisShardLink] {
        RedisShardLink.links(state.withLockedValue { $0.shards.mapValues(\.linkState) }, map: topology.currentMap)
    }

    public var reconnectCount: Int { state.withLockedValue { $0.shards.values.reduce(0) { $0 + $1.reconnectCount } } }

    public var queuedMessageCount: Int {
        state.withLockedValue { state in state.shards.values.reduce(state.waiting.count) { $0 + $1.queuedMessageCount }
        }
    }

    public var droppedMessageCount: Int {
        let own = dropped.load(ordering: .relaxed)
        return state.withLockedValue { $0.shards.values.reduce(own) { $0 + $1.droppedMessageCount } }
    }

    public func publish(_ payload: ByteBuffer, to channel: String) {
        route(
            RedisClusterRedirected(channel: channel, payload: payload, redirect: .tryAgain, redirects: 0), asking: nil)
    }

    /// Runs every shard publisher (those created later too) and the periodic slot map refresh,
    /// until the calling task is cancelled. Call it once.
    public func run() async {
        let observer = topology.addObserver { [weak self] map in self?.mapChanged(map) }
        defer {
            topology.removeObserver(observer)
            state.withLockedValue { $0.stopped = true }
        }
        // The control channel's shard connects at once, so the link is up before the first message.
        if let gate,
            let anchor = await topology.map(maxAge: topology.attemptMaxAge)?.shard(forKey: gate.channel)?.anchor
        {
            let map = topology.currentMap
            _ = state.withLockedValue { publisher(anchor: anchor, map: map, &$0) }
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.topology.refreshPeriodically() }
            for await publisher in started.stream {
                group.addTask { await publisher.run() }
            }
        }
    }

    /// Sends `message` to its slot's shard, or keeps it waiting for a route. `asking` names the node
    /// an `-ASK` pointed to.
    private func route(_ message: RedisClusterRedirected, asking: RedisConnectionConfiguration.Endpoint?) {
        let slot = RedisClusterSlot.slot(forKey: message.channel)
        let map = topology.currentMap
        var retry = false
        var dropWarning = false
        state.withLockedValue { state in
            let anchor: Int?
            if let asking {
                anchor = map?.shards.first { $0.primary == asking }?.anchor
            } else {
                anchor = state.waitingPerSlot[slot] == nil ? map?.shard(forSlot: slot)?.anchor : nil
            }
            if let anchor, let shard = publisher(anchor: anchor, map: map, &state) {
                shard.publish(message.payload, to: message.channel, redirects: message.redirects, asking: asking != nil)
                return
            }
            dropWarning = hold(message, slot: slot, &state)
            if !state.retryScheduled {
                state.retryScheduled = true
                retry = true
            }
        }
        if dropWarning { logger.debug("Redis Cluster publish: message waiting for a route dropped (queue full)") }
        if retry { retryWaiting(after: .zero) }
    }

    /// The shard publisher named `anchor`, created (and started) on first use. Under the lock.
    private func publisher(anchor: Int, map: RedisClusterSlotMap?, _ state: inout State) -> RedisPublisher? {
        if let existing = state.shards[anchor] { return existing }
        // The control channel's shard waits for every node's subscriber; the others for a subscriber
        // on each queued channel, for at most `bucketHold` (see `SubscriberGate.watchesQueuedChannels`).
        var shardGate = gate
        let control = gate.map { map?.shard(forKey: $0.channel)?.anchor == anchor } ?? false
        if let gate, !control {
            shardGate = SubscriberGate(
                channel: gate.channel, expectedSubscribers: { 1 }, maximumHold: Self.bucketHold,
                pollInterval: gate.pollInterval)
            shardGate?.watchesQueuedChannels = true
        }
        let publisher = RedisPublisher(
            endpoint: RedisClusterSlotEndpoint(topology: topology, slot: anchor), eventLoopGroup: eventLoopGroup,
            queueCapacity: queueCapacity, queueByteLimit: RedisPublisher.defaultQueueByteLimit, options: options,
            mode: mode, gate: shardGate, sharded: mode == .publish, logger: logger,
            onLinkStateChange: { [weak self] link in self?.shardLinkChanged(link, control: control) },
            onRedirect: { [weak self] message in self?.redirected(message) })
        state.shards[anchor] = publisher
        started.continuation.yield(publisher)
        return publisher
    }

    /// Keeps `message` waiting for a route; drops the oldest waiting one beyond the queue capacity
    /// and returns whether it did. Under the lock.
    private func hold(_ message: RedisClusterRedirected, slot: Int, _ state: inout State) -> Bool {
        state.waiting.append(Waiting(message: message, slot: slot))
        state.waitingPerSlot[slot, default: 0] += 1
        guard state.waiting.count > queueCapacity, let oldest = state.waiting.popFirst() else { return false }
        forget(oldest.slot, &state)
        dropped.add(1, ordering: .relaxed)
        return true
    }

    private func forget(_ slot: Int, _ state: inout State) {
        if let count = state.waitingPerSlot[slot], count > 1 {
            state.waitingPerSlot[slot] = count - 1
        } else {
            state.waitingPerSlot[slot] = nil
        }
    }

    /// A shard's link changed. With a gate (a cluster node), only the control channel's shard is
    /// reported, as it is the one its state messages travel on (a node re-sends its state when it
    /// reconnects); without one, the worst shard's state.
    private func shardLinkChanged(_ link: RedisLinkState, control: Bool) {
        if gate == nil {
            onLinkStateChange?(linkState)
        } else if control {
            onLinkStateChange?(link)
        }
    }

    /// A shard publisher's message was refused with a redirect.
    private func redirected(_ message: RedisClusterRedirected) {
        var message = message
        var delay = Duration.zero
        if case .tryAgain = message.redirect {
            // -CLUSTERDOWN lasts as long as the failover (writes are refused cluster-wide while a slot
            // has no primary): not a redirect to count, just a later try. The wait is bounded by the
            // queue, which drops the oldest.
            message.redirects -= 1
            delay = Self.tryAgainDelay
        }
        guard message.redirects <= Self.maximumRedirects else {
            dropped.add(1, ordering: .relaxed)
            logger.warning(
                "Redis Cluster kept redirecting a message; dropped",
                metadata: ["channel": "\(message.channel)", "redirects": "\(message.redirects)"])
            return
        }
        if case .ask(_, let node) = message.redirect {
            route(message, asking: node)
            return
        }
        // MOVED or CLUSTERDOWN: wait for the map to say where the slot went.
        let slot = RedisClusterSlot.slot(forKey: message.channel)
        let retry = state.withLockedValue { state in
            _ = hold(message, slot: slot, &state)
            defer { state.retryScheduled = true }
            return !state.retryScheduled
        }
        if retry { retryWaiting(after: delay) }
    }

    /// Refreshes the slot map, then routes what waits; again later while something still cannot go.
    private func retryWaiting(after delay: Duration) {
        Task { [weak self] in
            if delay > .zero { try? await Task.sleep(for: delay) }
            guard let self, !self.state.withLockedValue({ $0.stopped }) else { return }
            await self.topology.refresh()
            self.routeWaiting()
        }
    }

    /// Routes every waiting message the current map can place, oldest first.
    private func routeWaiting() {
        let map = topology.currentMap
        let again = state.withLockedValue { state in
            state.retryScheduled = false
            var kept = CircularBuffer<Waiting>()
            var blocked: Set<Int> = []
            for item in state.waiting {
                if !blocked.contains(item.slot), let anchor = map?.shard(forSlot: item.slot)?.anchor,
                    let shard = publisher(anchor: anchor, map: map, &state)
                {
                    shard.publish(item.message.payload, to: item.message.channel, redirects: item.message.redirects)
                } else {
                    blocked.insert(item.slot)
                    kept.append(item)
                }
            }
            state.waiting = kept
            state.waitingPerSlot = [:]
            for item in kept { state.waitingPerSlot[item.slot, default: 0] += 1 }
            if !kept.isEmpty { state.retryScheduled = true }
            return !kept.isEmpty
        }
        if again { retryWaiting(after: topology.minimumRefreshInterval) }
    }

    /// The slot map changed: shard connections to a node that no longer serves their shard close
    /// (and reconnect where the map says), and waiting messages go where they can.
    private func mapChanged(_ map: RedisClusterSlotMap) {
        let shards = state.withLockedValue { $0.shards }
        for (anchor, publisher) in shards {
            publisher.closeConnection(unlessTo: map.shard(anchor: anchor)?.primary)
        }
        routeWaiting()
    }
}
