import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ReverbRedis
import Synchronization

/// This node, built once at start-up: configuration, apps, the fan-out engine, the broadcaster
/// chosen for it (in memory, or Redis when scaling is on) and the HTTP API.
///
/// Everything is a `let`; the only mutable part is the set of socket ids in use. Nothing here
/// refers back to the node, so there is no reference cycle between node, apps and cluster.
final class Node: Sendable {
    let configuration: ReverbConfiguration
    let logger: Logger
    let fanout: Fanout
    let apps: AppRegistry
    /// How events and questions reach the other nodes.
    let pubSub: any PubSubProvider
    /// The cluster membership when scaling is on (the same object as `pubSub`).
    let cluster: ClusterNode?
    let httpAPI: HTTPAPI
    /// The path prefix as segments (`ws/v1` → `["ws", "v1"]`).
    let prefixSegments: [String]
    /// The WebSocket decoder's hard frame cap: the largest app `max_message_size` (`style.md` §4.4).
    let maxFrameSize: Int
    /// `/metrics` when enabled.
    let metrics: ServerMetrics?
    /// The dashboard and debug console when `dashboard.enabled`.
    let dashboard: Dashboard?
    /// Delivers the apps' webhooks; nil when no app has any.
    let webhookSender: WebhookSender?
    /// The main listener's bound port (the metrics' `port` label), set once bound.
    let listenerPort = Atomic<Int>(0)
    private let socketIDs = NIOLockedValueBox(Set<String>())

    /// - Throws: `ReverbServer.ScalingSetupError` when scaling is on and the Redis settings are unusable.
    init(
        configuration: ReverbConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = HTTPAPI.systemClock
    ) throws {
        self.configuration = configuration
        self.logger = logger
        var loops: [any EventLoop] = []
        for loop in eventLoopGroup.makeIterator() { loops.append(loop) }
        let appIndices = Dictionary(
            configuration.apps.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: { first, _ in first })
        let fanout = Fanout(eventLoops: loops, logger: logger, appIndices: appIndices)
        self.fanout = fanout
        let hasWebhooks = configuration.apps.contains { !$0.webhooks.isEmpty }
        let wake = hasWebhooks ? WakeSignal() : nil
        let apps = AppRegistry(configuration.apps, fanout: fanout, webhookSignal: wake)
        self.apps = apps
        self.webhookSender = wake.map { WebhookSender(apps: apps.all.compactMap(\.webhooks), wake: $0, logger: logger) }
        self.metrics = configuration.metrics.enabled ? ServerMetrics(prefix: configuration.metrics.prefix) : nil
        self.prefixSegments = configuration.server.path.split(separator: "/").map(String.init)
        self.maxFrameSize = max(125, configuration.apps.map(\.effectiveMaxMessageSize).max() ?? 10_000)
        let cluster = try Self.makeCluster(
            configuration: configuration, apps: apps, fanout: fanout, eventLoopGroup: eventLoopGroup, logger: logger)
        self.cluster = cluster
        let pubSub: any PubSubProvider = cluster ?? InMemoryPubSub()
        self.pubSub = pubSub
        let httpAPI = HTTPAPI(apps: apps, pubSub: pubSub, configuration: configuration, logger: logger, clock: clock)
        self.httpAPI = httpAPI
        cluster?.connectDashboard(apps: apps)
        self.dashboard =
            configuration.dashboard.enabled
            ? Dashboard(configuration: configuration, apps: apps, httpAPI: httpAPI, fanout: fanout, cluster: cluster)
            : nil
    }

    private static func makeCluster(
        configuration: ReverbConfiguration, apps: AppRegistry, fanout: Fanout, eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) throws -> ClusterNode? {
        let scaling = configuration.scaling
        guard scaling.enabled else { return nil }
        let factory: RedisClientFactory
        do {
            factory = try RedisClientFactory(settings: scaling.redis)
        } catch {
            throw ReverbServer.ScalingSetupError(problems: error.problems)
        }
        for warning in factory.warnings { logger.warning("\(warning)") }
        return ClusterNode(
            apps: apps, fanout: fanout, factory: factory, scaling: scaling, eventLoopGroup: eventLoopGroup,
            logger: logger)
    }

    /// The app with this key, compared exactly.
    func app(key: String) -> AppContext? { apps.app(key: key) }

    /// A socket id not used by any open connection of this node.
    func allocateSocketID() -> String {
        while true {
            let candidate = SocketID.random()
            if socketIDs.withLockedValue({ $0.insert(candidate).inserted }) { return candidate }
        }
    }

    /// Open WebSocket connections (those holding a socket id).
    var connectionCount: Int { socketIDs.withLockedValue { $0.count } }

    func releaseSocketID(_ socketID: String) {
        _ = socketIDs.withLockedValue { $0.remove(socketID) }
    }

    // MARK: Metrics

    /// `GET /metrics` (`http-api.md` §8.2): the bearer token when one is set, then the exposition text.
    func metricsResponse(headers: HTTPHeaders, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        guard let metrics else { return eventLoop.makeSucceededFuture(.notFound) }
        if let token = configuration.metrics.token {
            let given = headers.first(name: "authorization") ?? ""
            guard given.hasPrefix("Bearer "), Signature.constantTimeEquals(String(given.dropFirst(7)), token) else {
                var response = HTTPResponse.text(.unauthorized, "Unauthorized.")
                response.extraHeaders = [("WWW-Authenticate", "Bearer")]
                return eventLoop.makeSucceededFuture(response)
            }
        }
        let appCount = apps.all.count
        return fanout.onEveryShard { $0.metrics }.flatMap { loops in
            // Off the event loop: the process metrics read `/proc`.
            eventLoop.makeFutureWithTask {
                let snapshot = self.metricsSnapshot(loops: LoopMetrics.total(loops, appCount: appCount))
                var body = ByteBufferAllocator().buffer(capacity: 16 * 1024)
                body.writeBytes(metrics.render(snapshot))
                return HTTPResponse(status: .ok, contentType: ServerMetrics.contentType, body: body)
            }
        }.hop(to: eventLoop)
    }

    private func metricsSnapshot(loops: LoopMetrics) -> ServerMetrics.Snapshot {
        var snapshot = ServerMetrics.Snapshot(
            port: listenerPort.load(ordering: .relaxed), loops: loops, apps: [],
            inboxFullDrops: fanout.inboxes.reduce(0) { $0 + $1.droppedCount })
        for app in apps.all {
            var entry = ServerMetrics.Snapshot.App(id: app.id)
            entry.channels = app.directory.withState { $0.localChannelCount }
            if let webhooks = app.webhooks {
                entry.webhooksSent = webhooks.sentCount.load(ordering: .relaxed)
                entry.webhooksFailed = webhooks.failedCount.load(ordering: .relaxed)
                entry.webhooksDropped = webhooks.droppedCount
                entry.webhookQueueDepth = webhooks.depth
            }
            snapshot.apps.append(entry)
        }
        if let cluster {
            snapshot.redis = ServerMetrics.Snapshot.Redis(
                publisherConnected: cluster.publisher.linkState.isConnected,
                subscriberConnected: cluster.subscriber.linkState.isConnected,
                publisherReconnects: cluster.publisher.reconnectCount,
                subscriberReconnects: cluster.subscriber.reconnectCount,
                publishQueueDepth: cluster.publisher.queuedMessageCount,
                publishDropped: cluster.publisher.droppedMessageCount,
                shards: cluster.publisher.shardLinks.map {
                    .init(role: "publisher", shard: $0.shard, connected: $0.linkState.isConnected)
                }
                    + (cluster.busSubscriber?.shardLinks ?? []).map {
                        .init(role: "subscriber", shard: $0.shard, connected: $0.linkState.isConnected)
                    })
            snapshot.clusterNodes = cluster.livePeers.count + 1
            snapshot.clusterQueryTimeouts = cluster.partialQueryCount
            snapshot.clusterBusMessages = cluster.busMessageCount
            snapshot.clusterBusBytes = cluster.busByteCount
            snapshot.clusterBucketsSubscribed = cluster.subscribedBucketCount
        }
        snapshot.process = ProcessMetrics.read()
        return snapshot
    }
}
