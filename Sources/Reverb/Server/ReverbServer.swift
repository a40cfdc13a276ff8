public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import Prometheus
import ReverbRedis
public import ServiceLifecycle
import Synchronization

/// The swift-reverb node: one listener serving the Pusher WebSocket protocol and the HTTP API.
///
/// A `Service`: `run()` binds (unless `start()` already did), serves until graceful shutdown or
/// cancellation, then closes every connection with 1001 `Server shutting down`.
public final class ReverbServer: Service, Sendable {
    /// Why the listener could not start.
    public struct BindError: Error, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var reason: String
        public var description: String { "Cannot listen on \(host):\(port): \(reason)." }
    }

    /// Scaling is enabled but the Redis settings cannot be used; names each bad setting.
    public struct ScalingSetupError: Error, CustomStringConvertible {
        public var problems: [String]
        public var description: String { problems.joined(separator: "\n") }
    }

    /// Redis stayed away past `REDIS_TIMEOUT` with `REVERB_SCALING_EXIT_ON_TIMEOUT` on.
    public struct RedisTimeoutError: Error, CustomStringConvertible {
        public var description: String { "Redis unreachable for longer than the scaling timeout; exiting." }
    }

    private enum State {
        case idle
        case started(channel: any Channel, metricsChannel: (any Channel)?, sweeps: [RepeatedTask])
        case stopped
    }

    /// How long shutdown waits for clients to answer the 1001 Close before their sockets are closed.
    static let shutdownDrainTimeout = Duration.seconds(2)

    let node: Node
    /// Open plain-HTTP connections, quiesced on shutdown.
    let httpConnections: HTTPConnectionRegistry
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State.idle)
    private let onListening: (@Sendable (SocketAddress) -> Void)?

    /// Builds the node: apps, fan-out, and the Redis cluster membership when scaling is on.
    /// - Parameters:
    ///   - configuration: the node's configuration, already validated.
    ///   - eventLoopGroup: the loops serving connections; each gets its own channel shard.
    ///   - onListening: called once `run()` has bound the listener (the CLI prints its banner there,
    ///     after the service group's signal handlers are in place).
    /// - Throws: `ScalingSetupError` when scaling is on and the Redis settings cannot be used.
    public init(
        configuration: ReverbConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) throws {
        self.group = eventLoopGroup
        self.onListening = onListening
        self.node = try Node(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        var loops: [any EventLoop] = []
        for loop in eventLoopGroup.makeIterator() { loops.append(loop) }
        self.httpConnections = HTTPConnectionRegistry(eventLoops: loops)
    }

    public var configuration: ReverbConfiguration { node.configuration }

    /// What a `ServiceGroup` runs for this node, in order: the server, the heap trimmer, then the
    /// cluster membership when scaling is on. The group shuts services down in reverse order, so the cluster says
    /// `node_leave` before the server closes its connections.
    public var services: [any Service] {
        // The webhook sender first, so that it stops last.
        let node = self.node
        var services: [any Service] = []
        if let sender = node.webhookSender { services.append(sender) }
        services += [self, MemoryTrimmer(logger: node.logger, connections: { node.connectionCount })]
        if let cluster = node.cluster { services.append(cluster) }
        return services
    }

    /// The bound address once started.
    public var localAddress: SocketAddress? {
        state.withLockedValue {
            if case .started(let channel, _, _) = $0 { return channel.localAddress }
            return nil
        }
    }

    /// Binds the listener and starts the keep-alive sweeps. Returns the bound address.
    @discardableResult
    public func start() async throws -> SocketAddress {
        let server = configuration.server
        let node = self.node
        let connections = httpConnections
        let tlsContext = try server.tls.map(TLSContextFactory.makeServerContext)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 64 * 1024))
            // Small fixed reads keep idle connections small (style.md §4.4); larger messages take
            // several reads.
            .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    try ReverbServer.configurePipeline(
                        channel.pipeline.syncOperations, node: node, connections: connections)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: server.host, port: server.port).get()
        } catch {
            throw BindError(host: server.host, port: server.port, reason: Self.describe(error))
        }
        node.listenerPort.store(channel.localAddress?.port ?? server.port, ordering: .relaxed)
        var metricsChannel: (any Channel)?
        if node.metrics != nil, let port = configuration.metrics.port {
            let host = configuration.metrics.host
            do {
                metricsChannel = try await Self.metricsBootstrap(group: group, node: node).bind(host: host, port: port)
                    .get()
            } catch {
                try? await channel.close()
                throw BindError(host: host, port: port, reason: Self.describe(error))
            }
        }
        let sweeps = startSweeps()
        state.withLockedValue { $0 = .started(channel: channel, metricsChannel: metricsChannel, sweeps: sweeps) }
        return channel.localAddress!
    }

    /// The `/metrics` registry when metrics are on. The CLI bootstraps swift-metrics with it
    /// (`PrometheusMetricsFactory`), so what libraries report through swift-metrics is scraped too.
    public var metricsRegistry: PrometheusCollectorRegistry? { node.metrics?.registry }

    /// The metrics listener's bound address, when it has one (`metrics.port`).
    public var metricsAddress: SocketAddress? {
        state.withLockedValue {
            if case .started(_, let metricsChannel, _) = $0 { return metricsChannel?.localAddress }
            return nil
        }
    }

    private static func metricsBootstrap(group: any EventLoopGroup, node: Node) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(MetricsHTTPHandler(node: node))
                }
            }
    }

    /// Either Redis link has been down for `REDIS_TIMEOUT` or longer (`/up` says `DEGRADED`).
    public var isRedisDegraded: Bool { node.pubSub.isDegraded }

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            if io.errnoCode == EADDRINUSE { return "Address already in use" }
            if io.errnoCode == EACCES { return "Permission denied" }
            if io.errnoCode == EADDRNOTAVAIL { return "Cannot assign requested address" }
        }
        return "\(error)"
    }

    static func configurePipeline(
        _ pipeline: ChannelPipeline.SynchronousOperations, node: Node, connections: HTTPConnectionRegistry? = nil
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = max(1024, node.configuration.server.maxRequestSize)
        limits.maxHeaderFieldSize = limits.maxHeaderListSize
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits))
        let pipelining = HTTPServerPipelineHandler()
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(pipelining)
        try pipeline.addHandler(
            HTTPServerHandler(
                server: node, upgradeHandlers: [pipelining, encoder, decoder], connections: connections))
    }

    /// One repeated sweep per app per event loop, every min(60, ping_interval) seconds (`protocol.md` §9),
    /// and the dashboard's sampling every second when it is on.
    private func startSweeps() -> [RepeatedTask] {
        var tasks: [RepeatedTask] = []
        if let dashboard = node.dashboard, let loop = node.fanout.inboxes.first?.eventLoop {
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in dashboard.tick() })
        }
        for app in node.apps.all {
            let interval = TimeAmount.seconds(Int64(min(60, app.application.pingInterval)))
            let pingInterval = TimeAmount.seconds(Int64(app.application.pingInterval))
            let appID = app.id
            for inbox in node.fanout.inboxes {
                tasks.append(
                    inbox.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                        let now = inbox.eventLoop.now
                        for connection in inbox.loopShard.connections(of: appID) {
                            connection.sweep(now: now, pingInterval: pingInterval)
                        }
                        app.directory.withState { $0.purgeExpiredCache(now: now) }
                    })
            }
        }
        return tasks
    }

    /// Serves until graceful shutdown or cancellation, then shuts down.
    public func run() async throws {
        if localAddress == nil {
            let address = try await start()
            onListening?(address)
        }
        let exitOnTimeout = configuration.scaling.enabled && configuration.scaling.exitOnTimeout
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Returns on graceful shutdown (SIGTERM/SIGINT through the ServiceGroup) or cancellation.
                group.addTask { try? await gracefulShutdown() }
                if exitOnTimeout {
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .seconds(1))
                            if self.isRedisDegraded { throw RedisTimeoutError() }
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }

    /// Stops accepting, lets plain-HTTP connections finish the request in flight (at most 5 s),
    /// closes every WebSocket connection with 1001 and waits (bounded) for the clients' Close answers.
    public func shutdown() async {
        let previous = state.withLockedValue { state -> State in
            let previous = state
            state = .stopped
            return previous
        }
        guard case .started(let channel, let metricsChannel, let sweeps) = previous else { return }
        for sweep in sweeps { sweep.cancel() }
        try? await channel.close()
        try? await metricsChannel?.close()
        node.dashboard?.closeStreams()
        // Plain HTTP finishes its requests in flight while the WebSockets answer their Close.
        async let httpQuiesced: Void = httpConnections.quiesceAll(timeout: .seconds(5))
        _ = try? await node.fanout.onEveryShard { shard in
            for connection in shard.allConnections() { connection.shutDown() }
        }.get()
        let deadline = ContinuousClock.now + Self.shutdownDrainTimeout
        while ContinuousClock.now < deadline {
            let open = (try? await node.fanout.onEveryShard { $0.allConnections().count }.get())?.reduce(0, +) ?? 0
            if open == 0 { break }
            try? await Task.sleep(for: .milliseconds(10))
        }
        await httpQuiesced
    }
}
