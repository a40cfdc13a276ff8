public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Builds the Redis endpoint from Laravel-style settings (spec `scaling.md` §6) and opens the
/// publisher and subscriber from it. It is given values; it never reads the environment.
public struct RedisClientFactory: Sendable {
    /// The validated endpoint: for a Redis Cluster or Sentinel, the data nodes' credentials,
    /// database and TLS (the address comes from `topology`).
    public let configuration: RedisConnectionConfiguration
    /// One server, a Redis Cluster or Sentinel (`REDIS_CLUSTER`, `REDIS_SENTINELS`).
    public let topology: RedisTopology
    /// Seconds without Redis after which the link counts as degraded (`REDIS_TIMEOUT`, default 60 s).
    public let timeout: Duration
    /// Problems that do not stop startup: unknown URL query keys, a username without a password.
    public let warnings: [String]
    /// The Redis Cluster's slot map, shared by every connection made here; nil for other topologies.
    public let cluster: RedisClusterTopology?
    /// Sentinel only: where the primary is, asked by every connection attempt of every client of
    /// this factory, and closing them all when the primary changes.
    public let sentinelEndpoint: RedisSentinelEndpoint?

    /// Parses and validates `settings`, and loads the TLS files to check them.
    ///
    /// - Throws: `RedisSettingsError` listing every problem, each naming its setting.
    public init(settings: RedisSettings) throws(RedisSettingsError) {
        let result = try RedisSettingsParser.parse(settings)
        if let tls = result.configuration.tls {
            try Self.checkFiles(tls, names: settings.names)
        }
        self.configuration = result.configuration
        self.topology = result.topology
        self.timeout = result.timeout
        self.warnings = result.warnings
        self.cluster = Self.makeCluster(result.topology, result.configuration)
        self.sentinelEndpoint = Self.sentinelEndpoint(topology: result.topology, configuration: result.configuration)
    }

    /// A factory for an endpoint built by other means (tests, embedding).
    public init(
        configuration: RedisConnectionConfiguration, topology: RedisTopology = .server, timeout: Duration = .seconds(60)
    ) {
        self.configuration = configuration
        self.topology = topology
        self.timeout = timeout
        self.warnings = []
        self.cluster = Self.makeCluster(topology, configuration)
        self.sentinelEndpoint = Self.sentinelEndpoint(topology: topology, configuration: configuration)
    }

    private static func makeCluster(
        _ topology: RedisTopology, _ configuration: RedisConnectionConfiguration
    ) -> RedisClusterTopology? {
        guard case .cluster(let seeds) = topology else { return nil }
        return RedisClusterTopology(seeds: seeds, configuration: configuration)
    }

    /// Sentinel only: the primary, shared by every client this factory makes.
    private static func sentinelEndpoint(
        topology: RedisTopology, configuration: RedisConnectionConfiguration
    ) -> RedisSentinelEndpoint? {
        guard case .sentinel(let sentinel) = topology else { return nil }
        return RedisSentinelEndpoint(sentinel: sentinel, dataNode: configuration)
    }

    /// The options both clients use: `role`, `CLIENT SETNAME`, and the degraded timeout.
    public func options(role: String, clientName: String? = nil) -> RedisClientOptions {
        RedisClientOptions(role: role, clientName: clientName, unreachableTimeout: timeout)
    }

    /// Where a connection whose commands name `key` (a channel, a stream) goes.
    public func endpoint(forKey key: String) -> any RedisEndpointResolver {
        if let cluster { return RedisClusterSlotEndpoint(topology: cluster, slot: RedisClusterSlot.slot(forKey: key)) }
        if let sentinelEndpoint { return sentinelEndpoint }
        return FixedRedisEndpoint(configuration)
    }

    /// The bus publisher for this topology; start it with `run()`.
    public func makeBusPublisher(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        clientName: String? = nil,
        mode: RedisPublisher.Mode = .publish,
        gate: SubscriberGate? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) -> any RedisBusPublisher {
        if let cluster {
            return RedisClusterPublisher(
                topology: cluster, eventLoopGroup: eventLoopGroup, queueCapacity: queueCapacity,
                options: options(role: "publisher", clientName: clientName), mode: mode, gate: gate, logger: logger,
                onLinkStateChange: onLinkStateChange)
        }
        let publisher = makePublisher(
            eventLoopGroup: eventLoopGroup, queueCapacity: queueCapacity, clientName: clientName, mode: mode,
            gate: gate, logger: logger, onLinkStateChange: onLinkStateChange)
        guard let sentinelEndpoint else { return publisher }
        // The watcher runs beside the publisher, which every node has (the subscriber may be a stream reader).
        return RedisSentinelBusPublisher(
            publisher: publisher, endpoint: sentinelEndpoint, eventLoopGroup: eventLoopGroup,
            watcherOptions: options(role: "sentinel", clientName: nil), logger: logger)
    }

    /// The bus subscriber for this topology, starting with `channels`; start it with `run()`.
    public func makeBusSubscriber(
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) -> any RedisBusSubscriber {
        if let cluster {
            return RedisClusterSubscriber(
                topology: cluster, channels: channels, eventLoopGroup: eventLoopGroup,
                options: options(role: "subscriber", clientName: clientName), logger: logger,
                onLinkStateChange: onLinkStateChange, onMessage: onMessage)
        }
        return makeSubscriber(
            channels: channels, eventLoopGroup: eventLoopGroup, clientName: clientName, logger: logger,
            onLinkStateChange: onLinkStateChange, onMessage: onMessage)
    }

    /// A publisher for this endpoint; start it with `run()`. With Sentinel its connections go to the
    /// primary and are closed by a switch heard by the bus publisher's watcher: use `makeBusPublisher`
    /// unless another client of this factory runs that.
    public func makePublisher(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        queueCapacity: Int = RedisPublisher.defaultQueueCapacity,
        clientName: String? = nil,
        mode: RedisPublisher.Mode = .publish,
        gate: SubscriberGate? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil
    ) -> RedisPublisher {
        RedisPublisher(
            endpoint: endpoint(forKey: gate?.channel ?? ""),
            eventLoopGroup: eventLoopGroup,
            queueCapacity: queueCapacity,
            options: options(role: "publisher", clientName: clientName),
            mode: mode,
            gate: gate,
            logger: logger,
            onLinkStateChange: onLinkStateChange
        )
    }

    /// A subscriber to `channels` on this endpoint; start it with `run()`.
    public func makeSubscriber(
        channels: [String],
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onMessage: @escaping @Sendable (RedisPubSubMessage) -> Void
    ) -> RedisSubscriber {
        RedisSubscriber(
            endpoint: endpoint(forKey: channels[0]),
            channels: channels,
            eventLoopGroup: eventLoopGroup,
            options: options(role: "subscriber", clientName: clientName),
            logger: logger,
            onLinkStateChange: onLinkStateChange,
            onMessage: onMessage
        )
    }

    /// A reader of `stream` on this endpoint; start it with `run()`.
    public func makeStreamReader(
        stream: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clientName: String? = nil,
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onGap: @escaping @Sendable (String) -> Void = { _ in },
        onEntry: @escaping @Sendable (RedisStreamEntry) -> Void
    ) -> RedisStreamReader {
        RedisStreamReader(
            endpoint: endpoint(forKey: stream),
            stream: stream,
            eventLoopGroup: eventLoopGroup,
            options: options(role: "subscriber", clientName: clientName),
            logger: logger,
            onLinkStateChange: onLinkStateChange,
            onGap: onGap,
            onEntry: onEntry
        )
    }

    /// Fails when a TLS file is unreadable or not valid PEM, naming the setting.
    private static func checkFiles(
        _ tls: RedisConnectionConfiguration.TLS,
        names: RedisSettings.Names
    ) throws(RedisSettingsError) {
        var problems: [String] = []
        func check(_ path: String?, _ name: String, kind: String, load: (String) throws -> Void) {
            guard let path else { return }
            if access(path, R_OK) != 0 {
                problems.append("\(name): cannot read \"\(path)\": \(String(cString: strerror(errno))).")
                return
            }
            do {
                try load(path)
            } catch {
                problems.append("\(name): \"\(path)\" is not a valid PEM \(kind): \(error).")
            }
        }
        check(tls.caFile, names.tlsCA, kind: "certificate") { _ = try NIOSSLCertificate.fromPEMFile($0) }
        check(tls.certificateFile, names.tlsCert, kind: "certificate") { _ = try NIOSSLCertificate.fromPEMFile($0) }
        check(tls.keyFile, names.tlsKey, kind: "private key") { _ = try NIOSSLPrivateKey(file: $0, format: .pem) }
        if !problems.isEmpty { throw RedisSettingsError(problems: problems) }
    }
}
