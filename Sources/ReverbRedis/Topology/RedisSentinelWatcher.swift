import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Listens to one sentinel at a time for `+switch-master` and hands each announcement to its
/// `RedisSentinelEndpoint`, which closes the connections to the old primary. After each
/// (re)connection it also asks the sentinels for the primary, so that a switch announced while it
/// was not listening is caught. A lost or failed connection moves on to the next sentinel in the
/// endpoint's order, with the usual backoff between failed attempts.
///
/// Owned by whoever runs it (`RedisSentinelBusPublisher.run()`); cancelling that task stops it.
struct RedisSentinelWatcher: Sendable {
    /// Which sentinel to try next and which one is listened to, for messages.
    private final class Rotation: RedisEndpointResolver {
        let endpoint: RedisSentinelEndpoint
        /// Attempts so far and the sentinel of the latest; changed once per connection attempt.
        let cursor = NIOLockedValueBox<(attempts: Int, current: RedisSentinelEndpoint.Endpoint?)>((0, nil))

        init(endpoint: RedisSentinelEndpoint) {
            self.endpoint = endpoint
        }

        func resolve(logger: Logger) async throws(RedisConnectionError) -> RedisConnectionConfiguration {
            let order = endpoint.sentinelOrder
            let sentinel = cursor.withLockedValue { cursor in
                // The first attempt goes to the preferred sentinel; each further one to the next.
                let sentinel = order[cursor.attempts % order.count]
                cursor = (cursor.attempts + 1, sentinel)
                return sentinel
            }
            return endpoint.configuration(forSentinel: sentinel)
        }

        func accept(_ connection: RedisConnection, logger: Logger) async throws(RedisConnectionError) {}
    }

    /// The `+switch-master` channel: the sentinel's announcement that a failover finished.
    static let channel = "+switch-master"

    private let endpoint: RedisSentinelEndpoint
    private let rotation: Rotation
    private let loop: RedisReconnectLoop
    private let logger: Logger

    /// - Parameter options: Role (e.g. `sentinel`), backoff and health checks of the watcher's connection.
    init(
        endpoint: RedisSentinelEndpoint, eventLoopGroup: any EventLoopGroup, options: RedisClientOptions,
        logger: Logger
    ) {
        self.endpoint = endpoint
        self.logger = logger
        self.rotation = Rotation(endpoint: endpoint)
        self.loop = RedisReconnectLoop(
            endpoint: rotation, eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: nil)
    }

    /// Whether the watcher listens to a sentinel now.
    var linkState: RedisLinkState { loop.linkState }

    /// Listens until the calling task is cancelled.
    func run() async {
        let endpoint = self.endpoint
        let rotation = self.rotation
        let logger = self.logger
        await loop.run(
            onMessage: { message in
                endpoint.heard(message, from: rotation.cursor.withLockedValue { $0.current }, logger: logger)
            },
            prepare: { connection throws(RedisConnectionError) in
                try await connection.subscribe(to: [Self.channel])
                // A switch announced before this subscription is learnt here; a failed answer is
                // not this connection's fault (the next resolve asks again).
                _ = try? await endpoint.askPrimary(logger: logger)
            },
            up: { _ in },
            down: {}
        )
    }
}
