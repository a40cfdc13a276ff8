public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
import Synchronization

/// Publishes messages over one Redis connection that it keeps open, reconnecting forever.
///
/// `publish(_:to:)` never waits: while the connection is ready messages are pipelined, flushed once
/// per event-loop tick, and error replies are logged and dropped; while it is not, messages wait in
/// a bounded FIFO queue that goes out, in order and before anything newer, as soon as the
/// connection is ready again. When the queue is full the **oldest** message is dropped and counted
/// (spec `scaling.md` §5.4). Delivery is at most once: a message written just before the
/// connection breaks may be lost. With a `SubscriberGate` the queue is held after each connect
/// until the cluster's subscribers are back (or the gate's maximum hold passed).
///
/// In `.stream` mode each message is appended with `XADD` instead (`scaling.md`, Redis Streams
/// transport) and counts as sent only once Redis answered: messages written but not yet answered
/// when the connection breaks go back to the head of the queue and are sent again, so nothing is
/// lost to a reconnect (a message may then be appended twice; each carries this publisher's origin
/// and a sequence number so that readers drop the second copy).
///
/// Call `run()` in a long-lived task; cancel that task to stop.
public final class RedisPublisher: Sendable {
    /// How messages reach Redis.
    public enum Mode: Sendable, Equatable {
        /// `PUBLISH <channel> <payload>`, at most once.
        case publish
        /// `XADD <channel> MAXLEN ~ <maxLength> * o <origin> q <sequence> m <payload>`, acknowledged.
        case stream(maxLength: Int, origin: String)
    }

    private struct Queued: Sendable {
        var channel: String
        var payload: ByteBuffer
        /// This publisher's number for the message (stream mode).
        var sequence: UInt64
        /// Times a Redis Cluster redirected it before it came here.
        var redirects = 0
        /// Sent after `ASKING` (a Redis Cluster `-ASK` named this node for its slot).
        var asking = false
    }

    private struct State: Sendable {
        var queue = CircularBuffer<Queued>()
        var queuedBytes = 0
        /// Stream mode: written, waiting for Redis's answer, oldest first.
        var inFlight = CircularBuffer<Queued>()
        var nextSequence: UInt64 = 0
        /// The ready connection, if any.
        var connection: RedisConnection?
        var drainScheduled = false
        /// Pub/sub with a gate: the connection is ready but the queue is held for subscribers.
        var holding = false
        /// Whether a connection was ready before (the gate holds only after a reconnect).
        var connectedBefore = false
        var droppedSinceWarning = 0
        var lastDropWarning: ContinuousClock.Instant?
    }

    /// Default bound on queued messages (`REVERB_SCALING_QUEUE_SIZE`).
    public static let defaultQueueCapacity = 10_000
    /// Default bound on queued payload bytes: 64 MiB.
    public static let defaultQueueByteLimit = 64 * 1024 * 1024

    private let loop: RedisReconnectLoop
    private let state = NIOLockedValueBox(State())
    private let dropped = Atomic<Int>(0)
    private let queueCapacity: Int
    private let queueByteLimit: Int
    private let logger: Logger
    private let role: String
    private let mode: Mode
    private let gate: SubscriberGate?
    /// One shard of a Redis Cluster: `SPUBLISH` (and `PUBSUB SHARDNUMSUB` for the gate), each
    /// answered, so that a message refused with `-MOVED` goes to `onRedirect` instead of being lost.
    private let sharded: Bool
    /// Told of each message a Redis Cluster refused with a redirect (`-MOVED`, `-ASK`,
    /// `-CLUSTERDOWN`): it is no longer this publisher's.
    private let onRedirect: (@Sendable (RedisClusterRedirected) -> Void)?
    /// `MAXLEN`, `~`, the length, `*`, `o`, the origin, `q`: the constant middle of every `XADD`.
    private let streamArguments: [ByteBuffer]

    /// - Parameters:
    ///   - configuration: Where Redis is.
    ///   - queueCapacity: Messages held while disconnected (≥ 1). Default 10 000.
    ///   - queueByteLimit: Payload bytes held while disconnected. Default 64 MiB.
    ///   - options: Role, client name, backoff and health checks; `role` defaults to `publisher` here.
    ///   - gate: Pub/sub mode only: hold the queue after each connect until the channel's
    ///     subscribers are back. Ignored in stream mode (a stream keeps what nobody read yet).
    ///   - onLinkStateChange: Called after each change of `linkState`.
    public convenience init(
        configuration: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        queueByteLimit: Int = RedisPublisher.defaultQueueByteLimit,
        options: RedisClientOptions = RedisClientOptions(role: "publisher"),
        mode: Mode = .publish,
        gate: SubscriberGate? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) {
        self.init(
            endpoint: FixedRedisEndpoint(configuration), eventLoopGroup: eventLoopGroup,
            queueCapacity: queueCapacity, queueByteLimit: queueByteLimit, options: options, mode: mode, gate: gate,
            logger: logger, onLinkStateChange: onLinkStateChange)
    }

    /// A publisher whose every connection attempt goes where `endpoint` says (Sentinel, a cluster slot).
    public convenience init(
        endpoint: any RedisEndpointResolver,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        queueByteLimit: Int = RedisPublisher.defaultQueueByteLimit,
        options: RedisClientOptions = RedisClientOptions(role: "publisher"),
        mode: Mode = .publish,
        gate: SubscriberGate? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) {
        self.init(
            endpoint: endpoint, eventLoopGroup: eventLoopGroup, queueCapacity: queueCapacity,
            queueByteLimit: queueByteLimit, options: options, mode: mode, gate: gate, sharded: false,
            logger: logger, onLinkStateChange: onLinkStateChange, onRedirect: nil)
    }

    /// Any publisher; `sharded` and `onRedirect` make it one shard's of a `RedisClusterPublisher`.
    init(
        endpoint: any RedisEndpointResolver,
        eventLoopGroup: any EventLoopGroup,
        queueCapacity: Int,
        queueByteLimit: Int,
        options: RedisClientOptions,
        mode: Mode,
        gate: SubscriberGate?,
        sharded: Bool,
        logger: Logger,
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)?,
        onRedirect: (@Sendable (RedisClusterRedirected) -> Void)?
    ) {
        precondition(queueCapacity >= 1, "queueCapacity must be at least 1")
        self.sharded = sharded
        self.onRedirect = onRedirect
        self.mode = mode
        self.gate = mode == .publish ? gate : nil
        if case .stream(let maxLength, let origin) = mode {
            streamArguments = ["MAXLEN", "~", String(maxLength), "*", "o", origin, "q"].map { ByteBuffer(string: $0) }
        } else {
            streamArguments = []
        }
        self.queueCapacity = queueCapacity
        self.queueByteLimit = queueByteLimit
        self.logger = logger
        self.role = options.role
        self.loop = RedisReconnectLoop(
            endpoint: endpoint, eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: onLinkStateChange)
    }

    /// Whether the connection is ready, and since when.
    public var linkState: RedisLinkState { loop.linkState }

    /// Connections made after the first.
    public var reconnectCount: Int { loop.tracker.reconnectCount }

    /// Messages dropped so far because the queue was full (`reverb_redis_publish_dropped_total`).
    public var droppedMessageCount: Int { dropped.load(ordering: .relaxed) }

    /// Messages waiting to be written, or (stream mode) written and not yet answered.
    public var queuedMessageCount: Int { state.withLockedValue { $0.queue.count + $0.inFlight.count } }

    /// Publishes `payload` on `channel`, now or once the connection is ready.
    public func publish(_ payload: ByteBuffer, to channel: String) {
        publish(payload, to: channel, redirects: 0)
    }

    /// Publishes a message that a Redis Cluster redirected `redirects` times already; `asking` sends
    /// `ASKING` first.
    func publish(_ payload: ByteBuffer, to channel: String, redirects: Int, asking: Bool = false) {
        var dropWarning: Int?
        let drainOn: RedisConnection? = state.withLockedValue { state in
            state.nextSequence += 1
            state.queue.append(
                Queued(
                    channel: channel, payload: payload, sequence: state.nextSequence, redirects: redirects,
                    asking: asking))
            state.queuedBytes += payload.readableBytes
            guard let connection = state.connection, !state.holding else {
                dropWarning = trim(&state)
                return nil
            }
            if state.drainScheduled { return nil }
            state.drainScheduled = true
            return connection
        }
        if let dropWarning { warnDropped(dropWarning) }
        if let drainOn { scheduleDrain(on: drainOn) }
    }

    /// Connects, keeps the connection ready and reconnects until the calling task is cancelled.
    /// Call it once.
    public func run() async {
        await loop.run(
            onMessage: nil,
            prepare: { _ throws(RedisConnectionError) in },  // connect() already saw PONG
            up: { connection in self.becameReady(connection) },
            down: { self.lostConnection() }
        )
    }

    private func becameReady(_ connection: RedisConnection) {
        let (schedule, hold) = state.withLockedValue { state in
            state.connection = connection
            state.holding = gate != nil && state.connectedBefore
            state.connectedBefore = true
            let schedule = !state.holding && !state.drainScheduled && !state.queue.isEmpty
            if schedule { state.drainScheduled = true }
            return (schedule, state.holding)
        }
        if schedule { scheduleDrain(on: connection) }
        if hold, let gate { poll(gate, on: connection, since: .now()) }
    }

    /// Asks how many subscribers `gate.channel` has; releases the queue when enough are back or
    /// the hold is over, asks again later otherwise. Stops when `connection` is no longer current.
    private func poll(_ gate: SubscriberGate, on connection: RedisConnection, since start: NIODeadline) {
        let loop = connection.channel.eventLoop
        let channels =
            gate.watchesQueuedChannels
            ? state.withLockedValue { state in
                var seen: [String] = []
                for item in state.queue where !seen.contains(item.channel) {
                    seen.append(item.channel)
                    if seen.count == SubscriberGate.watchedChannelLimit { break }
                }
                return seen
            } : [gate.channel]
        if channels.isEmpty {
            release(connection)
            return
        }
        let promise = loop.makePromise(of: RESPValue.self)
        promise.futureResult.whenComplete { result in
            // [channel, count, channel, count...]: the fewest subscribers of any channel asked about.
            var subscribers = -1
            if case .success(.array(let items?)) = result, items.count == 2 * channels.count {
                subscribers =
                    stride(from: 1, to: items.count, by: 2).map {
                        if case .integer(let count) = items[$0] { Int(count) } else { -1 }
                    }.min() ?? -1
            }
            let expected = gate.expectedSubscribers()
            let waited = NIODeadline.now() - start
            // An error reply (a Redis without PUBSUB, an ACL refusing it) releases at once.
            let failed = if case .success(.error) = result { true } else { false }
            if subscribers >= expected || waited >= gate.maximumHold || failed {
                if subscribers < expected && !gate.watchesQueuedChannels {
                    self.logger.warning(
                        "Redis publisher released its queue before every node's subscriber was back",
                        metadata: [
                            "subscribers": "\(subscribers)", "expected": "\(expected)",
                            "held_ms": "\(waited.nanoseconds / 1_000_000)",
                        ])
                }
                self.release(connection)
            } else {
                loop.scheduleTask(in: gate.pollInterval) {
                    if self.state.withLockedValue({ $0.connection === connection && $0.holding }) {
                        self.poll(gate, on: connection, since: start)
                    }
                }
            }
        }
        connection.enqueue(
            [ByteBuffer(string: "PUBSUB"), ByteBuffer(string: sharded ? "SHARDNUMSUB" : "NUMSUB")]
                + channels.map { ByteBuffer(string: $0) },
            promise: promise)
        connection.flush()
    }

    private func release(_ connection: RedisConnection) {
        let schedule = state.withLockedValue { state in
            guard state.connection === connection, state.holding else { return false }
            state.holding = false
            let schedule = !state.drainScheduled && !state.queue.isEmpty
            if schedule { state.drainScheduled = true }
            return schedule
        }
        if schedule { scheduleDrain(on: connection) }
    }

    private func lostConnection() {
        let dropWarning = state.withLockedValue { state in
            state.connection = nil
            state.holding = false
            // Unanswered appends go out again first, in order (readers drop any second copy).
            if !state.inFlight.isEmpty {
                for item in state.inFlight { state.queuedBytes += item.payload.readableBytes }
                var requeued = state.inFlight
                requeued.append(contentsOf: state.queue)
                state.queue = requeued
                state.inFlight.removeAll()
            }
            return trim(&state)
        }
        if let dropWarning { warnDropped(dropWarning) }
    }

    private func warnDropped(_ count: Int) {
        logger.warning(
            "Redis publish queue full (\(role)); dropped the oldest messages",
            metadata: ["dropped": "\(count)", "dropped_total": "\(droppedMessageCount)"]
        )
    }

    private func scheduleDrain(on connection: RedisConnection) {
        connection.channel.eventLoop.execute {
            self.drain(connection)
        }
    }

    /// Writes everything queued to `connection` (stream mode: as much as fits beside the unanswered
    /// appends, within the queue bound), then flushes once. Runs on its event loop.
    ///
    /// A drain scheduled for a connection that has since been replaced hands over to the new one,
    /// whose own scheduling it may have suppressed.
    private func drain(_ connection: RedisConnection) {
        var batch = CircularBuffer<Queued>()
        let streaming = mode != .publish
        let handOver: RedisConnection? = state.withLockedValue { state in
            state.drainScheduled = false
            guard let current = state.connection, !state.holding else { return nil }
            guard current === connection else {
                if state.queue.isEmpty { return nil }
                state.drainScheduled = true
                return current
            }
            if streaming {
                let room = max(0, queueCapacity - state.inFlight.count)
                while batch.count < room, let item = state.queue.popFirst() {
                    state.queuedBytes -= item.payload.readableBytes
                    state.inFlight.append(item)
                    batch.append(item)
                }
            } else {
                swap(&batch, &state.queue)
                state.queuedBytes = 0
            }
            return nil
        }
        if let handOver { scheduleDrain(on: handOver) }
        guard !batch.isEmpty else { return }
        for item in batch {
            if item.asking { connection.enqueueAsking() }
            if streaming {
                let promise = connection.channel.eventLoop.makePromise(of: RESPValue.self)
                promise.futureResult.whenSuccess { reply in self.answered(reply, item, on: connection) }
                let arguments =
                    [ByteBuffer(string: "XADD"), ByteBuffer(string: item.channel)] + streamArguments + [
                        ByteBuffer(string: String(item.sequence)), ByteBuffer(string: "m"), item.payload,
                    ]
                connection.enqueue(arguments, promise: promise)
            } else if sharded {
                let promise = connection.channel.eventLoop.makePromise(of: RESPValue.self)
                promise.futureResult.whenSuccess { reply in
                    if case .error(let text) = reply { self.refused(item, text, on: connection) }
                }
                connection.enqueue(
                    [ByteBuffer(string: "SPUBLISH"), ByteBuffer(string: item.channel), item.payload], promise: promise)
            } else {
                connection.enqueuePublish(item.payload, to: item.channel)
            }
        }
        connection.flush()
    }

    /// An error reply to `item`: a Redis Cluster redirect hands it to `onRedirect`, anything else
    /// drops it with a warning. Returns whether it was redirected.
    @discardableResult
    private func refused(_ item: Queued, _ text: String, on connection: RedisConnection) -> Bool {
        if let onRedirect, let redirect = RedisClusterRedirect(errorReply: text, host: connection.endpoint.host) {
            onRedirect(
                RedisClusterRedirected(
                    channel: item.channel, payload: item.payload, redirect: redirect, redirects: item.redirects + 1))
            return true
        }
        logger.warning(
            "Redis refused \(sharded ? "SPUBLISH" : mode == .publish ? "PUBLISH" : "XADD") (\(role)): \(text)")
        return false
    }

    /// The server the ready connection goes to, if any.
    var connectedEndpoint: RedisConnectionConfiguration.Endpoint? {
        state.withLockedValue { $0.connection?.endpoint }
    }

    /// Closes the ready connection when it goes anywhere but `endpoint` (the shard's primary moved):
    /// new messages queue at once, and the reconnect loop asks its resolver where to go now.
    func closeConnection(unlessTo endpoint: RedisConnectionConfiguration.Endpoint?) {
        let stale: RedisConnection? = state.withLockedValue { state in
            guard let connection = state.connection, connection.endpoint != endpoint else { return nil }
            state.connection = nil
            state.holding = false
            return connection
        }
        stale?.channel.close(promise: nil)
    }

    /// Stream mode: Redis answered the oldest unanswered append on `connection`.
    private func answered(_ reply: RESPValue, _ item: Queued, on connection: RedisConnection) {
        let drainOn: RedisConnection? = state.withLockedValue { state in
            guard state.connection === connection, state.inFlight.popFirst() != nil else { return nil }
            guard !state.queue.isEmpty, !state.drainScheduled else { return nil }
            state.drainScheduled = true
            return connection
        }
        if case .error(let text) = reply { refused(item, text, on: connection) }
        if let drainOn { scheduleDrain(on: drainOn) }
    }

    /// Drops the oldest messages beyond the bounds; returns how many were dropped since the last
    /// warning when a warning is due (at most every 10 s).
    private func trim(_ state: inout State) -> Int? {
        var removed = 0
        while state.queue.count > queueCapacity || (state.queuedBytes > queueByteLimit && state.queue.count > 1) {
            let oldest = state.queue.removeFirst()
            state.queuedBytes -= oldest.payload.readableBytes
            removed += 1
        }
        guard removed > 0 else { return nil }
        dropped.add(removed, ordering: .relaxed)
        state.droppedSinceWarning += removed
        let now = ContinuousClock.now
        if let last = state.lastDropWarning, now - last < .seconds(10) { return nil }
        state.lastDropWarning = now
        defer { state.droppedSinceWarning = 0 }
        return state.droppedSinceWarning
    }
}
