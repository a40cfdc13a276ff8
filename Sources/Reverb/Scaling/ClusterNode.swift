import Logging
import NIOConcurrencyHelpers
import NIOCore
import ReverbRedis
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// This node's membership in a cluster over Redis pub/sub (`scaling.md` §4): publishes
/// broadcasts, terminations and queries, answers peers, tracks their liveness by heartbeats.
///
/// Shared by every event loop and task; mutable parts sit behind one lock that covers dictionary
/// updates only (never a publish, a log or an await). A `Service`: it runs in the server's service
/// group and, on graceful shutdown, says `node_leave` before the server closes its connections.
final class ClusterNode: PubSubProvider, Service {
    static let heartbeatInterval = Duration.seconds(5)
    static let peerLifetime = Duration.seconds(15)
    static let maximumPendingQueries = 1000
    static let version = "0.1.0"

    let nodeID: String
    let channel: String
    let queryTimeout: Duration
    /// Seconds without Redis before `/up` reports `DEGRADED`.
    let degradedAfter: Duration
    let publisher: RedisPublisher
    let subscriber: RedisSubscriber
    private let apps: AppRegistry
    private let logger: Logger
    /// This machine's name, read once, for heartbeats.
    private let host: String
    private let state = NIOLockedValueBox(State())
    private let relay: MessageRelay

    private struct State {
        var peers: [String: ContinuousClock.Instant] = [:]
        var queries: [String: PendingQuery] = [:]
        var lastWarning: [String: ContinuousClock.Instant] = [:]
        var droppedMessages = 0
        var subscriberUp = false
        var leaving = false
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
        func subscribed() { node.withLockedValue { $0 }?.node?.sendHeartbeat() }
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
        self.queryTimeout = .milliseconds(Int64(scaling.queryTimeout * 1000))
        self.degradedAfter = factory.timeout
        self.apps = apps
        self.logger = logger
        self.host = Self.hostName()
        let relay = MessageRelay()
        self.relay = relay
        self.publisher = factory.makePublisher(
            eventLoopGroup: eventLoopGroup, queueCapacity: scaling.queueSize,
            clientName: "swift-reverb:\(nodeID):publisher",
            logger: logger)
        let stateBox = self.state
        self.subscriber = factory.makeSubscriber(
            channels: [scaling.channel], eventLoopGroup: eventLoopGroup,
            clientName: "swift-reverb:\(nodeID):subscriber",
            logger: logger,
            onLinkStateChange: { link in
                stateBox.withLockedValue { state in
                    state.subscriberUp = link.isConnected
                    if link.isConnected {
                        // Expiry was suspended while we could not hear anyone: start afresh.
                        let now = ContinuousClock.now
                        for peer in state.peers.keys { state.peers[peer] = now }
                    }
                }
                if link.isConnected { relay.subscribed() }
            },
            onMessage: { message in relay.deliver(message.payload) })
        relay.node.withLockedValue { $0 = ClusterNodeReference(self) }
    }

    static func randomHex<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let value = UInt64.random(in: .min ... .max, using: &generator)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
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
                    self.expirePeers()
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
            Set(state.peers.filter { now - $0.value < Self.peerLifetime }.keys)
        }
    }

    /// Messages from the bus dropped as malformed or unknown.
    var droppedMessageCount: Int { state.withLockedValue { $0.droppedMessages } }

    // MARK: Publishing

    func publishToPeers(_ event: BroadcastEvent, app: String) {
        publisher.publish(
            ClusterEnvelope.broadcast(node: nodeID, app: app, event: event), to: channel)
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
            guard state.subscriberUp else { return [] }
            let gone = state.peers.filter { now - $0.value >= Self.peerLifetime }.map(\.key)
            for peer in gone { state.peers[peer] = nil }
            return gone
        }
        for peer in expired {
            logger.info("Cluster node expired", metadata: ["node": "\(peer)"])
            peerGone(peer)
        }
    }

    // MARK: Queries

    /// Asks every live peer; returns their results, and whether some are missing.
    func query(app: String, request: ClusterQueryRequest) async -> (replies: [JSONObject], partial: Bool) {
        guard isConnected else { return ([], true) }
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
        finished.continuation.resume(
            returning: (finished.replies.map(\.result), !finished.expected.isSubset(of: answered)))
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

    /// Handles one bus message (`scaling.md` §4.2, §4.9): nothing received can stop the node.
    func receive(_ payload: ByteBuffer) {
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
        guard let sender = envelope["node"]?.stringValue else { return drop("message without node") }
        if sender == nodeID { return }
        let known = state.withLockedValue { state -> Bool in
            let known = state.peers[sender] != nil
            state.peers[sender] = ContinuousClock.now
            return known
        }
        if !known {
            logger.info("Cluster node joined", metadata: ["node": "\(sender)"])
            if type == "heartbeat" { sendHeartbeat() }
        }
        switch type {
        case "heartbeat":
            break
        case "node_leave":
            state.withLockedValue { _ = $0.peers.removeValue(forKey: sender) }
            logger.info("Cluster node left", metadata: ["node": "\(sender)"])
            peerGone(sender)
        case "broadcast":
            guard let app = app(of: envelope), let payloadRange,
                let frames = ClusterEnvelope.frames(in: payload, payload: payloadRange)
            else {
                return drop("malformed broadcast")
            }
            let exceptSocketID = envelope["socket_id"]?.stringValue
            for (channel, frame) in frames {
                app.deliverChannelEvent(channel: channel, frame: frame, except: exceptSocketID)
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
                node: nodeID, app: app.id, id: id, to: sender, result: app.localQueryResult(request))
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
        case "presence_join", "presence_leave", "sync_request", "sync_state":
            break  // phase 2: presence replication
        default:
            drop("message of unknown type \"\(type)\"")
        }
    }

    private func app(of envelope: JSONObject) -> AppContext? {
        guard let id = envelope["app"]?.stringValue else { return nil }
        guard let app = apps.app(id: id) else {
            warnOnce("unknown app \(id)", "Cluster message for unknown app \(id) ignored")
            return nil
        }
        return app
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
