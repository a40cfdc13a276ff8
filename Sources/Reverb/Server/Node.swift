import Logging
import NIOConcurrencyHelpers
import NIOCore
import ReverbRedis

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
        let fanout = Fanout(eventLoops: loops, logger: logger)
        self.fanout = fanout
        let apps = AppRegistry(configuration.apps, fanout: fanout)
        self.apps = apps
        self.prefixSegments = configuration.server.path.split(separator: "/").map(String.init)
        self.maxFrameSize = max(125, configuration.apps.map(\.effectiveMaxMessageSize).max() ?? 10_000)
        let cluster = try Self.makeCluster(
            configuration: configuration, apps: apps, fanout: fanout, eventLoopGroup: eventLoopGroup, logger: logger)
        self.cluster = cluster
        let pubSub: any PubSubProvider = cluster ?? InMemoryPubSub()
        self.pubSub = pubSub
        self.httpAPI = HTTPAPI(apps: apps, pubSub: pubSub, configuration: configuration, logger: logger, clock: clock)
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

    func releaseSocketID(_ socketID: String) {
        _ = socketIDs.withLockedValue { $0.remove(socketID) }
    }
}
