import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ReverbRedis
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// This node's membership in a cluster over Redis pub/sub (`scaling.md` §4): publishes
/// broadcasts, terminations and queries, answers peers, replicates presence, subscriber counts
/// (§4.6) and signed-in users (docs.md "Scaling"), tracks the peers' liveness by heartbeats and drops the state of those that go silent.
///
/// Shared by every event loop and task; mutable parts sit behind one lock that covers dictionary
/// updates only (never a publish, a log or an await). Replicated state lives in each app's
/// `ChannelDirectory`; messages that change it are applied and published under that directory's
/// lock (taken before this node's own lock, never after), so what a peer hears is in the order it
/// happened. A `Service`: it runs in the server's service group and, on graceful shutdown, says
/// `node_leave` before the server closes its connections.
final class ClusterNode: PubSubProvider, Service {
    static let heartbeatInterval = Duration.seconds(5)
    static let peerLifetime = Duration.seconds(15)
    /// How often peers are checked for expiry.
    static let expiryInterval = Duration.seconds(1)
    /// A gap this long between two expiry checks means this process was paused (SIGSTOP, a stalled
    /// machine): it heard nothing because it was not running, so it judges nobody that round.
    static let pauseThreshold = Duration.seconds(3)
    /// Channels per `occupancy` message.
    static let occupancyBatch = 1000
    /// A peer is asked for its state at most this often.
    static let syncRequestInterval = Duration.seconds(5)
    /// Corrective `sync_state`s (someone else published in this node's name) at most this often.
    static let correctionInterval = Duration.seconds(1)
    /// Own presence announcements remembered to recognise their echo.
    static let rememberedAnnouncements = 8192
    /// Nodes that said `node_leave`, remembered so that their late messages do not revive them.
    static let rememberedDepartures = 256
    /// Stream origins whose sequence numbers are kept.
    static let rememberedOrigins = 4096
    static let maximumPendingQueries = 1000
    static let version = "0.1.0"

    let nodeID: String
    let channel: String
    let queryTimeout: Duration
    /// Seconds without Redis before `/up` reports `DEGRADED`.
    let degradedAfter: Duration
    let publisher: any RedisBusPublisher
    /// Reads the bus: a pub/sub subscriber, or a stream reader (`scaling.transport`).
    let subscriber: any BusReader
    /// The pub/sub subscriber (nil with streams), whose channels follow local interest.
    let busSubscriber: (any RedisBusSubscriber)?
    let transport: ScalingConfiguration.Transport
    let routing: ScalingConfiguration.Routing
    /// Interest routing: the bucket channels this node listens to. Changed on `loop` only.
    let interest: NIOLockedValueBox<InterestTable>?
    /// Stream entries older than this reach clients no more (`scaling.replay_window`), in ms.
    private let replayWindow: UInt64
    private let apps: AppRegistry
    private let logger: Logger
    /// Runs the occupancy flush and corrective syncs.
    private let loop: any EventLoop
    /// This machine's name, read once, for heartbeats.
    private let host: String
    private let state = NIOLockedValueBox(State())
    /// Bus messages and their bytes heard (own echoes included), for `/metrics`.
    private let busMessages = Atomic<Int>(0)
    private let busBytes = Atomic<Int>(0)
    private let relay: MessageRelay
    /// The peers' figures for the dashboard (`ClusterNode+Debug`).
    let dashboardPeers = DashboardPeerTable()

    private struct Peer {
        var lastSeen: ContinuousClock.Instant
        /// When this node last asked the peer for its state.
        var askedAt: ContinuousClock.Instant?
        /// Whether it sent a heartbeat: a swift-reverb node, not just a name on a stray message.
        var heartbeats = false
    }

    private struct State {
        var peers: [String: Peer] = [:]
        var departed = Set<String>()
        var departureOrder = CircularBuffer<String>()
        var queries: [String: PendingQuery] = [:]
        var lastWarning: [String: ContinuousClock.Instant] = [:]
        var droppedMessages = 0
        var refusedAtCaps = 0
        var impersonations = 0
        var subscriberUp = false
        var leaving = false
        var lastTick = ContinuousClock.now
        /// Channels per app whose local count changed since the last `occupancy`.
        var dirtyCounts: [String: Set<String>] = [:]
        var flushScheduled = false
        var lastCorrection: ContinuousClock.Instant?
        var correctionScheduled = false
        /// Streams: the last sequence number read from each origin, to drop second copies.
        var streamSequences: [String: UInt64] = [:]
        var duplicateEntries = 0
        var streamGaps = 0
        /// Queries answered partial.
        var partialQueries = 0
        /// Broadcasts read past the replay window (recorded for cache channels, not delivered).
        var staleBroadcasts = 0
        var staleBroadcastsLogged = 0
        var lastStaleLog: ContinuousClock.Instant?
        /// Hashes of this node's presence announcements not yet heard back.
        var announced = Set<Int>()
        var announcedOrder = CircularBuffer<Int>()
    }

    private struct PendingQuery {
        var expected: Set<String>
        var replies: [(node: String, result: JSONObject)] = []
        var continuation: CheckedContinuation<(replies: [JSONObject], partial: Bool), Never>
    }

    /// Carries subscriber events to the node once it exists (the subscriber is built first).
    private final class MessageRelay: Sendable {
        let node = NIOLockedValueBox<ClusterNodeReference?>(nil)
        func deliver(_ payload: ByteBuffer) { node.withLockedValue { $0 }?.node?.receive(payload) }
        func deliver(_ entry: RedisStreamEntry) { node.withLockedValue { $0 }?.node?.receive(entry) }
        func gap() { node.withLockedValue { $0 }?.node?.streamGap() }
        func subscribed() { node.withLockedValue { $0 }?.node?.subscribed() }
        func publisherReconnected() { node.withLockedValue { $0 }?.node?.sendSyncState(to: nil) }
        /// The nodes whose subscribers a reconnected pub/sub publisher waits for, this one included.
        func knownNodes() -> Int { node.withLockedValue { $0 }?.node?.knownNodeCount ?? 1 }
    }

    private final class ClusterNodeReference: Sendable {
        weak let node: ClusterNode?
        init(_ node: ClusterNode) { self.node = node }
    }

    init(
        apps: AppRegistry, fanout: Fanout, factory: RedisClientFactory, scaling: ScalingConfiguration,
        eventLoopGroup: any EventLoopGroup, logger: Logger
    ) {
        var generator = SystemRandomNumberGenerator()
        let nodeID = Self.randomHex(using: &generator)
        self.nodeID = nodeID
        self.channel = scaling.channel
        // Clamped (a day; a century): any positive number of seconds passes validation, and a huge
        // one must not trap in the conversion (found by fuzzing the configuration).
        self.queryTimeout = .milliseconds(Int64(min(scaling.queryTimeout, 86_400) * 1000))
        self.degradedAfter = factory.timeout
        self.apps = apps
        self.logger = logger
        self.loop = eventLoopGroup.next()
        // The bus has a thread of its own: a stream read's round trip must not wait behind the
        // fan-out work of a busy server loop.
        let eventLoopGroup = Self.busThread
        self.host = Self.hostName()
        let relay = MessageRelay()
        self.relay = relay
        self.transport = scaling.transport
        self.routing = scaling.routing
        self.interest =
            scaling.routing == .interest
            ? NIOLockedValueBox(InterestTable(prefix: scaling.channel, buckets: scaling.buckets)) : nil
        self.replayWindow = UInt64(min(max(0, scaling.replayWindow), 3_153_600_000) * 1000)
        self.publisher = factory.makeBusPublisher(
            eventLoopGroup: eventLoopGroup, queueCapacity: scaling.queueSize,
            clientName: "swift-reverb:\(nodeID):publisher",
            mode: scaling.transport == .streams
                ? .stream(maxLength: scaling.streamLength, origin: nodeID) : .publish,
            gate: SubscriberGate(channel: scaling.channel, expectedSubscribers: { relay.knownNodes() }),
            logger: logger,
            onLinkStateChange: { link in
                // Whatever was lost while the link was down, peers get this node's state again.
                if link.isConnected { relay.publisherReconnected() }
            })
        let stateBox = self.state
        let onLinkStateChange: @Sendable (RedisLinkState) -> Void = { link in
            stateBox.withLockedValue { state in
                state.subscriberUp = link.isConnected
                if link.isConnected {
                    // Expiry was suspended while we could not hear anyone: start afresh.
                    let now = ContinuousClock.now
                    for peer in state.peers.keys { state.peers[peer]!.lastSeen = now }
                }
            }
            if link.isConnected { relay.subscribed() }
        }
        let readerName = "swift-reverb:\(nodeID):subscriber"
        switch scaling.transport {
        case .pubsub:
            let subscriber = factory.makeBusSubscriber(
                channels: [scaling.channel], eventLoopGroup: eventLoopGroup, clientName: readerName, logger: logger,
                onLinkStateChange: onLinkStateChange, onMessage: { message in relay.deliver(message.payload) })
            self.busSubscriber = subscriber
            self.subscriber = BusSubscriberReader(subscriber: subscriber)
        case .streams:
            self.busSubscriber = nil
            self.subscriber = factory.makeStreamReader(
                stream: scaling.channel, eventLoopGroup: eventLoopGroup, clientName: readerName, logger: logger,
                onLinkStateChange: onLinkStateChange, onGap: { _ in relay.gap() },
                onEntry: { entry in relay.deliver(entry) })
        }
        relay.node.withLockedValue { $0 = ClusterNodeReference(self) }
    }

    /// The Redis connections' event loop, shared by every cluster node of the process.
    static let busThread: any EventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func randomHex<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let value = UInt64.random(in: .min ... .max, using: &generator)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Milliseconds since 1970 (stream entry ids are Redis's wall-clock milliseconds).
    static func wallClockMilliseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1000 + UInt64(now.tv_nsec / 1_000_000)
    }

    static func hostName() -> String {
        var hostBytes = [CChar](repeating: 0, count: 256)
        gethostname(&hostBytes, hostBytes.count)
        return String(decoding: hostBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Running

    /// Runs the publisher, the subscriber and the heartbeat until graceful shutdown (then says
    /// `node_leave`) or cancellation.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.publisher.run() }
            group.addTask { await self.subscriber.run() }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.heartbeatInterval)
                    if Task.isCancelled { break }
                    self.sendHeartbeat()
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.expiryInterval)
                    if Task.isCancelled { break }
                    self.expirePeers()
                    self.expireInterest()
                }
            }
            // Returns on graceful shutdown or cancellation.
            try? await gracefulShutdown()
            if !Task.isCancelled { await self.leave() }
            group.cancelAll()
        }
    }

    /// Publishes `node_leave` (graceful shutdown) and waits up to `timeout` for it to be written.
    func leave(timeout: Duration = .seconds(1)) async {
        state.withLockedValue { $0.leaving = true }
        publisher.publish(ClusterEnvelope.nodeLeave(node: nodeID), to: channel)
        let deadline = ContinuousClock.now + timeout
        while publisher.queuedMessageCount > 0 && publisher.linkState.isConnected && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// True when either Redis link has been down for `degradedAfter` or longer (`/up`).
    var isDegraded: Bool {
        let now = ContinuousClock.now
        for link in [publisher.linkState, subscriber.linkState] {
            if case .disconnected(let since) = link, now - since >= degradedAfter { return true }
        }
        return false
    }

    /// Both Redis links are ready.
    var isConnected: Bool { publisher.linkState.isConnected && subscriber.linkState.isConnected }

    /// Peers heard from in the last 15 s.
    var livePeers: Set<String> {
        let now = ContinuousClock.now
        return state.withLockedValue { state in
            Set(state.peers.filter { now - $0.value.lastSeen < Self.peerLifetime }.keys)
        }
    }

    /// The webhook owner rule (docs.md "Webhooks"): the occupancy, member and count webhooks of a
    /// channel come from one live node, the same on every node: the one whose weight for the channel
    /// (FNV-1a of "node id/channel name", finalised) is highest among the live peers and this node (rendezvous
    /// hashing). Each node sends the transitions it sees for the channels it owns; the 3 s delay of
    /// `channel_vacated` and `member_removed` absorbs the time the other nodes' counts take to arrive.
    /// A node that has said `node_leave` sends none: the peers dropped it, and their owner sends what
    /// its departure changed.
    func sendsWebhooks(for channel: String) -> Bool {
        guard !state.withLockedValue({ $0.leaving }) else { return false }
        return Self.webhookOwner(of: channel, among: livePeers.union([nodeID])) == nodeID
    }

    /// The node of `nodes` with the highest weight for `channel` (ties: the smallest id).
    static func webhookOwner(of channel: String, among nodes: Set<String>) -> String? {
        var best: (node: String, weight: UInt64)?
        for node in nodes {
            let weight = webhookWeight(node: node, channel: channel)
            if let current = best, current.weight > weight || (current.weight == weight && current.node < node) {
                continue
            }
            best = (node, weight)
        }
        return best?.node
    }

    /// FNV-1a (64 bits) of `node`, "/", `channel`, then MurmurHash3's finaliser so that the high bits
    /// depend on every byte: the same on every node and every run (Swift's `Hasher` is seeded per process).
    static func webhookWeight(node: String, channel: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in node.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ UInt64(UInt8(ascii: "/"))) &* 0x100_0000_01b3
        for byte in channel.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return hash
    }
    /// This node and the peers it knows that sent a heartbeat (live, or silent while its own
    /// subscriber is down, when expiry is suspended).
    var knownNodeCount: Int { state.withLockedValue { state in state.peers.values.count { $0.heartbeats } } + 1 }

    /// Messages from the bus dropped as malformed or unknown.
    var droppedMessageCount: Int { state.withLockedValue { $0.droppedMessages } }

    /// Queries answered partial: a peer did not answer in time, or Redis was away (`scaling.md` §4.4).
    var partialQueryCount: Int { state.withLockedValue { $0.partialQueries } }

    /// Remote memberships and counts refused at the replicated-state caps.
    var refusedAtCapsCount: Int { state.withLockedValue { $0.refusedAtCaps } }

    /// Presence announcements heard in this node's name that it did not send.
    var impersonationCount: Int { state.withLockedValue { $0.impersonations } }

    var stateIsPartial: Bool { !subscriber.linkState.isConnected }

    /// Bus messages heard so far, this node's own echoes included.
    var busMessageCount: Int { busMessages.load(ordering: .relaxed) }

    /// Their bytes (payloads, without the RESP framing).
    var busByteCount: Int { busBytes.load(ordering: .relaxed) }

    // MARK: Publishing

    func publishToPeers(_ event: BroadcastEvent, app: String) {
        guard let interest else {
            return publisher.publish(ClusterEnvelope.broadcast(node: nodeID, app: app, event: event), to: channel)
        }
        publishByInterest(event, app: app, table: interest)
    }

    func gather(
        app: String, request: ClusterQueryRequest, local: JSONObject, on eventLoop: any EventLoop
    ) -> EventLoopFuture<ClusterChannelView> {
        eventLoop.makeFutureWithTask {
            let (replies, partial) = await self.query(app: app, request: request)
            return ClusterChannelView(merging: local, replies, partial: partial)
        }
    }

    func publishTermination(app: String, userID: String) {
        publisher.publish(ClusterEnvelope.terminateUser(node: nodeID, app: app, userID: userID), to: channel)
    }

    func sendHeartbeat() {
        publisher.publish(
            ClusterEnvelope.heartbeat(
                node: nodeID, host: host, pid: Int(getpid()), startedAt: Self.startedAt, version: Self.version),
            to: channel)
    }

    private static let startedAt = Int(time(nil))

    private func expirePeers() {
        let now = ContinuousClock.now
        let expired: [String] = state.withLockedValue { state in
            defer { state.lastTick = now }
            guard state.subscriberUp else { return [] }
            if now - state.lastTick > Self.pauseThreshold {
                // This process was not running: the silence was ours. Start afresh.
                for peer in state.peers.keys { state.peers[peer]!.lastSeen = now }
                return []
            }
            let gone = state.peers.filter { now - $0.value.lastSeen >= Self.peerLifetime }.map(\.key)
            for peer in gone { state.peers[peer] = nil }
            return gone
        }
        for peer in expired {
            logger.info("Cluster node expired", metadata: ["node": "\(peer)"])
            dropState(of: peer)
            peerGone(peer)
        }
    }

    /// The subscriber is ready (start-up or after a reconnect): say who we are, ask everyone for
    /// their state, and give ours, since peers may have missed our changes meanwhile.
    private func subscribed() {
        sendHeartbeat()
        publisher.publish(ClusterEnvelope.syncRequest(node: nodeID, to: nil), to: channel)
        sendSyncState(to: nil)
    }

    /// Publishes this node's state, one `sync_state` per app, each built and published under its
    /// app's lock so it is ordered with the announcements around it.
    func sendSyncState(to peer: String?) {
        guard !state.withLockedValue({ $0.leaving }) else { return }
        for app in apps.all {
            app.directory.withState { directory in
                publisher.publish(
                    ClusterEnvelope.syncState(node: nodeID, to: peer, app: app.id, state: directory.localState()),
                    to: channel)
            }
        }
    }

    /// Removes every member and count attributed to `peer`.
    private func dropState(of peer: String) {
        for app in apps.all { apply(to: app) { $0.removeNode(peer) } }
    }

    /// Changes `app`'s directory and carries out what that means for local clients, under its lock.
    private func apply(to app: AppContext, _ change: (inout ChannelDirectoryState) -> DirectoryChanges) {
        let refused = app.directory.withState { directory -> Int in
            let changes = change(&directory)
            app.carryOut(changes, countChanged: nil, pubSub: self)
            return changes.refused
        }
        if refused > 0 {
            state.withLockedValue { $0.refusedAtCaps += refused }
            warnOnce(
                "caps",
                "Replicated cluster state of app \(app.id) is at its caps (docs.md \"Scaling\"); entries refused")
        }
    }

    // MARK: Replication

    func announce(_ announcements: [PresenceAnnouncement], app: String) {
        for announcement in announcements {
            let message = ClusterEnvelope.presence(node: nodeID, app: app, announcement: announcement)
            let hash = Self.hash(message)
            let leaving = state.withLockedValue { state -> Bool in
                guard !state.leaving else { return true }
                if state.announced.insert(hash).inserted {
                    state.announcedOrder.append(hash)
                    if state.announcedOrder.count > Self.rememberedAnnouncements {
                        state.announced.remove(state.announcedOrder.removeFirst())
                    }
                }
                return false
            }
            // Graceful shutdown: peers dropped this node at `node_leave`; nothing more to say.
            if leaving { return }
            publisher.publish(message, to: channel)
        }
    }

    func localCountChanged(channel name: String, app: AppContext) {
        let schedule = state.withLockedValue { state -> Bool in
            guard !state.leaving else { return false }
            state.dirtyCounts[app.id, default: []].insert(name)
            guard !state.flushScheduled else { return false }
            state.flushScheduled = true
            return true
        }
        // Sent from the loop's next turn: a burst of changes made meanwhile goes out in one message,
        // and a single change reaches the bus within microseconds, usually before the subscriber's
        // client has read its `subscription_succeeded`.
        if schedule { loop.execute { self.flushCounts() } }
    }

    /// Publishes the current local counts of the channels that changed, per app.
    private func flushCounts() {
        let dirty = state.withLockedValue { state -> [String: Set<String>] in
            state.flushScheduled = false
            defer { state.dirtyCounts = [:] }
            return state.leaving ? [:] : state.dirtyCounts
        }
        for (appID, names) in dirty {
            guard let app = apps.app(id: appID) else { continue }
            let names = Array(names)
            for start in stride(from: 0, to: names.count, by: Self.occupancyBatch) {
                let batch = names[start..<min(start + Self.occupancyBatch, names.count)]
                let counts = app.directory.withState { directory in
                    let counts = batch.map { ($0, directory.localSubscriptionCount($0)) }
                    publisher.publish(ClusterEnvelope.occupancy(node: nodeID, app: appID, counts: counts), to: channel)
                    return counts
                }
                if let interest { follow(counts, app: appID, table: interest) }
            }
        }
    }

    private static func hash(_ buffer: ByteBuffer) -> Int {
        var hasher = Hasher()
        buffer.withUnsafeReadableBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    /// A presence announcement in this node's name came back: ours (the echo of a publish), or
    /// somebody else's, whose claim peers now believe. Then peers get our true state again.
    private func heardOwnName(_ payload: ByteBuffer) {
        let hash = Self.hash(payload)
        let ours = state.withLockedValue { $0.announced.remove(hash) != nil }
        guard !ours else { return }
        state.withLockedValue { $0.impersonations += 1 }
        warnOnce(
            "impersonation", "A presence message in this node's name (\(nodeID)) that it did not send; correcting peers"
        )
        scheduleCorrection()
    }

    /// Sends an unsolicited `sync_state` now, or at the end of the current correction interval.
    private func scheduleCorrection() {
        let now = ContinuousClock.now
        let delay: Duration? = state.withLockedValue { state in
            guard !state.correctionScheduled else { return nil }
            state.correctionScheduled = true
            guard let last = state.lastCorrection else { return .zero }
            return max(.zero, Self.correctionInterval - (now - last))
        }
        guard let delay else { return }
        let nanoseconds = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
        loop.scheduleTask(in: .nanoseconds(nanoseconds)) {
            self.state.withLockedValue { state in
                state.correctionScheduled = false
                state.lastCorrection = ContinuousClock.now
            }
            self.sendSyncState(to: nil)
        }
    }

    // MARK: Queries

    /// Asks every live peer; returns their results, and whether some are missing.
    func query(app: String, request: ClusterQueryRequest) async -> (replies: [JSONObject], partial: Bool) {
        guard isConnected else {
            state.withLockedValue { $0.partialQueries += 1 }
            return ([], true)
        }
        let expected = livePeers
        if expected.isEmpty { return ([], false) }
        var generator = SystemRandomNumberGenerator()
        let id = Self.randomHex(using: &generator)
        let timeout = queryTimeout
        return await withCheckedContinuation { continuation in
            let accepted = state.withLockedValue { state -> Bool in
                guard state.queries.count < Self.maximumPendingQueries else { return false }
                state.queries[id] = PendingQuery(expected: expected, continuation: continuation)
                return true
            }
            guard accepted else {
                state.withLockedValue { $0.partialQueries += 1 }
                continuation.resume(returning: ([], true))
                return
            }
            publisher.publish(ClusterEnvelope.query(node: nodeID, app: app, id: id, request: request), to: channel)
            Task {
                try? await Task.sleep(for: timeout)
                self.finishQuery(id, force: true)
            }
        }
    }

    /// Resolves a query when every expected peer answered, or at once with `force`.
    private func finishQuery(_ id: String, force: Bool) {
        let finished = state.withLockedValue { state -> PendingQuery? in
            guard let pending = state.queries[id] else { return nil }
            let answered = Set(pending.replies.map(\.node))
            guard force || pending.expected.isSubset(of: answered) else { return nil }
            state.queries[id] = nil
            return pending
        }
        guard let finished else { return }
        let answered = Set(finished.replies.map(\.node))
        let partial = !finished.expected.isSubset(of: answered)
        if partial { state.withLockedValue { $0.partialQueries += 1 } }
        finished.continuation.resume(returning: (finished.replies.map(\.result), partial))
    }

    /// A peer left or expired: pending queries stop waiting for it.
    private func peerGone(_ peer: String) {
        let ids = state.withLockedValue { state -> [String] in
            var ids: [String] = []
            for (id, var pending) in state.queries where pending.expected.contains(peer) {
                pending.expected.remove(peer)
                state.queries[id] = pending
                ids.append(id)
            }
            return ids
        }
        for id in ids { finishQuery(id, force: false) }
    }

    // MARK: Receiving

    /// Stream entries whose sequence number shows a second copy (a publisher's retry).
    var duplicateEntryCount: Int { state.withLockedValue { $0.duplicateEntries } }

    /// Reconnects after which the stream no longer held every entry after the last one read.
    var streamGapCount: Int { state.withLockedValue { $0.streamGaps } }

    /// Broadcasts read from the stream more than the replay window after they were appended: they
    /// updated cache channels and reached no client.
    var staleBroadcastCount: Int { state.withLockedValue { $0.staleBroadcasts } }

    /// The stream reader found a gap: it was logged; the re-sync that follows every reconnect
    /// repairs members and counts.
    func streamGap() {
        state.withLockedValue { $0.streamGaps += 1 }
    }

    /// Counts a broadcast not delivered for its age, and says so at most every 10 s (a reader
    /// back after a long outage may read thousands in a row).
    private func staleBroadcast(age: UInt64) {
        let now = ContinuousClock.now
        let report = state.withLockedValue { state -> Int? in
            state.staleBroadcasts += 1
            if let last = state.lastStaleLog, now - last < .seconds(10) { return nil }
            state.lastStaleLog = now
            defer { state.staleBroadcastsLogged = state.staleBroadcasts }
            return state.staleBroadcasts - state.staleBroadcastsLogged
        }
        guard let report else { return }
        logger.warning(
            "Stream events older than the replay window were not delivered",
            metadata: [
                "events": "\(report)", "age_ms": "\(age)", "replay_window_ms": "\(replayWindow)",
                "setting": "REVERB_SCALING_REPLAY_WINDOW",
            ])
    }

    /// Handles one stream entry: drops a publisher's second copy, then the message, marked stale
    /// when it is older than the replay window.
    func receive(_ entry: RedisStreamEntry) {
        if !entry.origin.isEmpty {
            let fresh = state.withLockedValue { state -> Bool in
                if let last = state.streamSequences[entry.origin], entry.sequence <= last {
                    state.duplicateEntries += 1
                    return false
                }
                if state.streamSequences.count >= Self.rememberedOrigins && state.streamSequences[entry.origin] == nil {
                    // Keep the live peers' numbers; forget the rest.
                    let now = ContinuousClock.now
                    state.streamSequences = state.streamSequences.filter {
                        state.peers[$0.key].map { now - $0.lastSeen < Self.peerLifetime } ?? false
                    }
                }
                state.streamSequences[entry.origin] = entry.sequence
                return true
            }
            guard fresh else { return }
        }
        let now = Self.wallClockMilliseconds()
        let age = now > entry.id.milliseconds ? now - entry.id.milliseconds : 0
        receive(entry.payload, age: age)
    }

    /// Handles one bus message (`scaling.md` §4.2, §4.9): nothing received can stop the node.
    /// - Parameter age: milliseconds since the message was appended (streams; 0 for pub/sub). Past
    ///   the replay window, events still update cache channels but reach no client; past a peer's
    ///   lifetime, messages of a node not known to be live are ignored: replaying them would bring a
    ///   dead node back.
    func receive(_ payload: ByteBuffer, age: UInt64 = 0) {
        busMessages.add(1, ordering: .relaxed)
        busBytes.add(payload.readableBytes, ordering: .relaxed)
        // The envelope's members as they stand: small fields are decoded, a broadcast's payload is
        // copied into frames without decoding its values.
        guard
            let members = try? payload.withUnsafeReadableBytes({ bytes throws(JSONParseError) in
                try JSONParser.members(bytes)
            })
        else {
            return drop("non-JSON message")
        }
        var envelope = JSONObject()
        var payloadRange: Range<Int>?
        for member in members {
            if member.key == "payload" {
                payloadRange = member.valueRange
                continue
            }
            let value = payload.getSlice(
                at: payload.readerIndex + member.valueRange.lowerBound, length: member.valueRange.count)!
            guard let decoded = try? JSONParser.parse(value.readableBytesView) else { return drop("non-JSON message") }
            envelope[member.key] = decoded
        }
        guard let type = envelope["type"]?.stringValue else { return drop("message without type") }
        guard let version = envelope["v"]?.integerValue else {
            if ["message", "metrics", "terminate"].contains(type) {
                return drop("Reverb-format message; give swift-reverb nodes their own REVERB_SCALING_CHANNEL")
            }
            return drop("message without v")
        }
        guard version == ClusterEnvelope.version else { return drop("message of format version \(version)") }
        guard let sender = envelope["node"]?.stringValue, !sender.isEmpty else { return drop("message without node") }
        if sender == nodeID {
            if ["presence_join", "presence_leave", "user_join", "user_leave"].contains(type) { heardOwnName(payload) }
            return
        }
        enum Sender { case known, new, departed }
        let now = ContinuousClock.now
        let stale = age >= UInt64(Self.peerLifetime.components.seconds * 1000)
        let (standing, ask) = state.withLockedValue { state -> (Sender, Bool) in
            if state.departed.contains(sender) { return (.departed, false) }
            if stale && state.peers[sender] == nil { return (.departed, false) }
            if type == "node_leave" { return (state.peers[sender] == nil ? .new : .known, false) }
            let standing: Sender = state.peers[sender] == nil ? .new : .known
            var peer = state.peers[sender] ?? Peer(lastSeen: now)
            peer.lastSeen = now
            if type == "heartbeat" { peer.heartbeats = true }
            // A node we did not know (new, or expired while it was frozen or cut off, which it may
            // not have noticed) is asked for its state rather than waiting for it to offer it.
            var ask = false
            if standing == .new && type != "sync_state" {
                if peer.askedAt.map({ now - $0 >= Self.syncRequestInterval }) ?? true {
                    peer.askedAt = now
                    ask = true
                }
            }
            state.peers[sender] = peer
            return (standing, ask)
        }
        // A node that said goodbye is gone for good (a restart is a new node): late messages of
        // its own must not bring it back.
        if standing == .departed { return }
        if standing == .new && type != "node_leave" {
            logger.info("Cluster node joined", metadata: ["node": "\(sender)"])
            if type == "heartbeat" { sendHeartbeat() }
        }
        if ask { publisher.publish(ClusterEnvelope.syncRequest(node: nodeID, to: sender), to: channel) }
        switch type {
        case "heartbeat":
            break
        case "node_leave":
            state.withLockedValue { state in
                state.peers[sender] = nil
                if state.departed.insert(sender).inserted {
                    state.departureOrder.append(sender)
                    if state.departureOrder.count > Self.rememberedDepartures {
                        state.departed.remove(state.departureOrder.removeFirst())
                    }
                }
            }
            logger.info("Cluster node left", metadata: ["node": "\(sender)"])
            dropState(of: sender)
            peerGone(sender)
        case "broadcast":
            guard let app = app(of: envelope), let payloadRange,
                let frames = ClusterEnvelope.frames(in: payload, payload: payloadRange)
            else {
                return drop("malformed broadcast")
            }
            let exceptSocketID = envelope["socket_id"]?.stringValue
            let live = age <= replayWindow
            if !live { staleBroadcast(age: age) }
            for (channel, frame) in frames {
                if live {
                    app.deliverChannelEvent(channel: channel, frame: frame, except: exceptSocketID)
                } else {
                    app.recordCachedEvent(channel: channel, frame: frame)
                }
            }
        case "terminate_user":
            guard let app = app(of: envelope), let userID = envelope["user_id"]?.stringValue else {
                return drop("malformed terminate_user")
            }
            _ = app.terminateLocally(identity: userID)
        case "query":
            guard let app = app(of: envelope), let id = envelope["id"]?.stringValue,
                let request = ClusterQueryRequest(envelope)
            else { return drop("malformed query") }
            let reply = ClusterEnvelope.queryReply(
                node: nodeID, app: app.id, id: id, to: sender, result: app.queryResult(request, scope: .local))
            publisher.publish(reply, to: channel)
        case "query_reply":
            guard envelope["to"]?.stringValue == nodeID else { return }
            guard let id = envelope["id"]?.stringValue, case .object(let result)? = envelope["result"] else {
                return drop("malformed query_reply")
            }
            let exists = state.withLockedValue { state -> Bool in
                guard state.queries[id] != nil else { return false }
                state.queries[id]!.replies.append((sender, result))
                return true
            }
            if exists { finishQuery(id, force: false) }
        case "presence_join":
            guard let channel = envelope["channel"]?.stringValue, ChannelName.kind(of: channel).isPresence,
                let identity = envelope["user_id"]?.stringValue,
                let member = PresenceMember(channelData: envelope["channel_data"]?.stringValue),
                member.identity == identity
            else { return drop("malformed presence_join") }
            guard let app = app(of: envelope) else { return }
            apply(to: app) { $0.remoteJoin(channel: channel, member: member, node: sender) }
        case "presence_leave":
            guard let channel = envelope["channel"]?.stringValue, let identity = envelope["user_id"]?.stringValue
            else { return drop("malformed presence_leave") }
            guard let app = app(of: envelope) else { return }
            apply(to: app) { $0.remoteLeave(channel: channel, identity: identity, node: sender) }
        case "user_join":
            guard let identity = envelope["user_id"]?.stringValue, !identity.isEmpty else {
                return drop("malformed user_join")
            }
            guard let app = app(of: envelope) else { return }
            apply(to: app) { $0.remoteUserJoin(identity: identity, node: sender) }
        case "user_leave":
            guard let identity = envelope["user_id"]?.stringValue else { return drop("malformed user_leave") }
            guard let app = app(of: envelope) else { return }
            apply(to: app) { $0.remoteUserLeave(identity: identity, node: sender) }
        case "occupancy":
            guard case .object(let channels)? = envelope["channels"] else { return drop("malformed occupancy") }
            var counts: [(String, Int)] = []
            for (name, value) in channels.entries {
                guard let count = value.integerValue, count >= 0 else { return drop("malformed occupancy") }
                counts.append((name, count))
            }
            guard let app = app(of: envelope) else { return }
            apply(to: app) { directory in
                var changes = DirectoryChanges()
                for (name, count) in counts {
                    changes.merge(directory.setRemoteCount(channel: name, node: sender, count: count))
                }
                return changes
            }
        case "debug_watch", "debug_event", "dashboard_stats":
            receiveDashboard(type: type, envelope: envelope, from: sender)
        case "sync_request":
            if let to = envelope["to"]?.stringValue, to != nodeID { return }
            sendSyncState(to: sender)
        case "sync_state":
            if let to = envelope["to"]?.stringValue, to != nodeID { return }
            receiveSyncState(envelope, from: sender)
        default:
            drop("message of unknown type \"\(type)\"")
        }
    }

    /// Replaces, for each app the message lists, what this node attributes to `sender`.
    private func receiveSyncState(_ envelope: JSONObject, from sender: String) {
        guard case .object(let presence)? = envelope["presence"] else { return drop("malformed sync_state") }
        let occupancy = envelope["occupancy"]?.objectValue ?? JSONObject()
        // Signed-in users (ours); a node without them (older, or none signed in) holds none.
        let signedIn = envelope["users"]?.objectValue ?? JSONObject()
        var appIDs = presence.entries.map(\.key)
        for (id, _) in occupancy.entries where presence[id] == nil { appIDs.append(id) }
        for (id, _) in signedIn.entries where presence[id] == nil && occupancy[id] == nil { appIDs.append(id) }
        for appID in appIDs {
            var members: [(channel: String, members: [PresenceMember])] = []
            for (channel, list) in presence[appID]?.objectValue?.entries ?? [] {
                guard ChannelName.kind(of: channel).isPresence, let list = list.arrayValue else {
                    return drop("malformed sync_state")
                }
                var parsed: [PresenceMember] = []
                for item in list {
                    guard let item = item.objectValue, let identity = item["user_id"]?.stringValue,
                        let member = PresenceMember(channelData: item["channel_data"]?.stringValue),
                        member.identity == identity
                    else { return drop("malformed sync_state") }
                    parsed.append(member)
                }
                members.append((channel, parsed))
            }
            var counts: [(channel: String, count: Int)] = []
            for (channel, value) in occupancy[appID]?.objectValue?.entries ?? [] {
                guard let count = value.integerValue, count >= 0 else { return drop("malformed sync_state") }
                counts.append((channel, count))
            }
            var users: [String] = []
            if let list = signedIn[appID] {
                guard let list = list.arrayValue else { return drop("malformed sync_state") }
                for item in list {
                    guard let identity = item.stringValue, !identity.isEmpty else {
                        return drop("malformed sync_state")
                    }
                    users.append(identity)
                }
            }
            guard let app = apps.app(id: appID) else {
                unknownApp(appID)
                continue
            }
            apply(to: app) { $0.replace(node: sender, presence: members, counts: counts, users: users) }
        }
    }

    private func app(of envelope: JSONObject) -> AppContext? {
        guard let id = envelope["app"]?.stringValue else { return nil }
        guard let app = apps.app(id: id) else {
            unknownApp(id)
            return nil
        }
        return app
    }

    /// A message (or a `sync_state` part) for an app this node does not serve: ignored, counted,
    /// warned once a minute per id.
    private func unknownApp(_ id: String) {
        state.withLockedValue { $0.droppedMessages += 1 }
        warnOnce("unknown app \(id)", "Cluster message for unknown app \(id) ignored")
    }

    private func drop(_ kind: String) {
        state.withLockedValue { $0.droppedMessages += 1 }
        warnOnce(kind, "Dropped cluster message: \(kind)")
    }

    /// Logs a warning at most once a minute per kind.
    private func warnOnce(_ kind: String, _ message: String) {
        let now = ContinuousClock.now
        let warn = state.withLockedValue { state -> Bool in
            if let last = state.lastWarning[kind], now - last < .seconds(60) { return false }
            state.lastWarning[kind] = now
            return true
        }
        if warn { logger.warning("\(message)") }
    }
}
