public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ReverbRedis
public import ServiceLifecycle

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
        case started(channel: any Channel, sweeps: [RepeatedTask], cluster: Task<Void, Never>?)
        case stopped
    }

    let runtime: ServerRuntime
    /// Open plain-HTTP connections, quiesced on shutdown.
    let httpConnections: HTTPConnectionRegistry
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State.idle)
    private let onListening: (@Sendable (SocketAddress) -> Void)?

    /// - Parameters:
    ///   - configuration: the node's configuration, already validated.
    ///   - eventLoopGroup: the loops serving connections; each gets its own channel shard.
    ///   - onListening: called once `run()` has bound the listener (the CLI prints its banner there,
    ///     after the service group's signal handlers are in place).
    public init(
        configuration: ReverbConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) {
        self.group = eventLoopGroup
        self.onListening = onListening
        var loops: [any EventLoop] = []
        for loop in eventLoopGroup.makeIterator() { loops.append(loop) }
        self.runtime = ServerRuntime(configuration: configuration, eventLoops: loops, logger: logger)
        self.httpConnections = HTTPConnectionRegistry(eventLoops: loops)
    }

    public var configuration: ReverbConfiguration { runtime.configuration }

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
        let runtime = self.runtime
        let connections = httpConnections
        let tlsContext = try server.tls.map(TLSContextFactory.makeServerContext)
        let cluster = try makeCluster()
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
                        channel.pipeline.syncOperations, runtime: runtime, connections: connections)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: server.host, port: server.port).get()
        } catch {
            throw BindError(host: server.host, port: server.port, reason: Self.describe(error))
        }
        let sweeps = startSweeps()
        // The cluster's Redis links run for the server's lifetime; `shutdown()` cancels them.
        let clusterTask = cluster.map { cluster in Task { await cluster.run() } }
        state.withLockedValue { $0 = .started(channel: channel, sweeps: sweeps, cluster: clusterTask) }
        return channel.localAddress!
    }

    /// The cluster membership when scaling is enabled; the listener serves local clients at once
    /// while Redis connects in the background.
    private func makeCluster() throws -> ClusterNode? {
        let scaling = configuration.scaling
        guard scaling.enabled else { return nil }
        if let existing = runtime.node.cluster { return existing }
        let factory: RedisClientFactory
        do {
            factory = try RedisClientFactory(settings: scaling.redis)
        } catch {
            throw ScalingSetupError(problems: error.problems)
        }
        for warning in factory.warnings { runtime.logger.warning("\(warning)") }
        let cluster = ClusterNode(
            node: runtime.node, factory: factory, scaling: scaling, eventLoopGroup: group, logger: runtime.logger)
        runtime.node.cluster = cluster
        return cluster
    }

    /// Either Redis link has been down for `REDIS_TIMEOUT` or longer (`/up` says `DEGRADED`).
    public var isRedisDegraded: Bool { runtime.node.cluster?.isDegraded ?? false }

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            if io.errnoCode == EADDRINUSE { return "Address already in use" }
            if io.errnoCode == EACCES { return "Permission denied" }
            if io.errnoCode == EADDRNOTAVAIL { return "Cannot assign requested address" }
        }
        return "\(error)"
    }

    static func configurePipeline(
        _ pipeline: ChannelPipeline.SynchronousOperations, runtime: ServerRuntime,
        connections: HTTPConnectionRegistry? = nil
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = max(1024, runtime.configuration.server.maxRequestSize)
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
                server: runtime, upgradeHandlers: [pipelining, encoder, decoder], connections: connections))
    }

    /// One repeated sweep per app per event loop, every min(60, ping_interval) seconds (`protocol.md` §9).
    private func startSweeps() -> [RepeatedTask] {
        var tasks: [RepeatedTask] = []
        for app in runtime.node.apps {
            let interval = TimeAmount.seconds(Int64(min(60, app.application.pingInterval)))
            let pingInterval = TimeAmount.seconds(Int64(app.application.pingInterval))
            let appID = app.id
            for inbox in runtime.node.inboxes {
                tasks.append(
                    inbox.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                        let now = NIODeadline.now()
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
    /// closes every WebSocket connection with 1001 and waits briefly for them to go.
    public func shutdown() async {
        let previous = state.withLockedValue { state -> State in
            let previous = state
            state = .stopped
            return previous
        }
        guard case .started(let channel, let sweeps, let clusterTask) = previous else { return }
        for sweep in sweeps { sweep.cancel() }
        try? await channel.close()
        await httpConnections.quiesceAll(timeout: .seconds(5))
        if let cluster = runtime.node.cluster { await cluster.leave() }
        let closing = runtime.node.inboxes.map { inbox in
            inbox.submit { shard -> Int in
                let connections = shard.allConnections()
                for connection in connections { connection.shutDown() }
                return connections.count
            }
        }
        _ = try? await EventLoopFuture.whenAllSucceed(closing, on: runtime.node.inboxes[0].eventLoop).get()
        clusterTask?.cancel()
        await clusterTask?.value
    }
}
