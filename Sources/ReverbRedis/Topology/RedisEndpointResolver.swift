public import Logging

/// Finds the server each connection attempt of a long-lived client goes to, and vets the
/// connection once it is open: the one seam between the clients (`RedisPublisher`,
/// `RedisSubscriber`, `RedisStreamReader`) and the topology (one server, Sentinel, Redis Cluster).
///
/// The reconnect loop asks `resolve` before every attempt, so a client follows a new primary
/// simply by reconnecting; `accept` may refuse a server that is not what the topology wants (a
/// replica where a primary is needed) and may keep the connection to close it later, when the
/// topology changes under it (a `+switch-master`).
public protocol RedisEndpointResolver: Sendable {
    /// The server for the next attempt: its address, credentials and TLS.
    ///
    /// - Throws: `RedisConnectionError` when no server can be named now (no sentinel answers, no
    ///   seed knows the slot map); the attempt counts as failed and is retried after the backoff.
    func resolve(logger: Logger) async throws(RedisConnectionError) -> RedisConnectionConfiguration

    /// Vets a connection `resolve` led to, after `connect` saw PONG and before the client uses it.
    ///
    /// - Throws: `RedisConnectionError` to refuse it: it is closed and the attempt counts as failed.
    func accept(_ connection: RedisConnection, logger: Logger) async throws(RedisConnectionError)

    /// Waits `delay`, the backoff after a failed attempt, before the next one. A resolver may end
    /// the wait early when the topology changed (the sentinels named a new primary), so that the
    /// next attempt goes at once. Default: sleeps `delay`.
    ///
    /// - Throws: `CancellationError` when the task is cancelled.
    func pause(for delay: Duration) async throws
}

extension RedisEndpointResolver {
    public func pause(for delay: Duration) async throws {
        try await Task.sleep(for: delay)
    }
}

/// One server, always the same (`REDIS_URL` or `REDIS_HOST`…).
public struct FixedRedisEndpoint: RedisEndpointResolver {
    public let configuration: RedisConnectionConfiguration

    public init(_ configuration: RedisConnectionConfiguration) {
        self.configuration = configuration
    }

    public func resolve(logger: Logger) async throws(RedisConnectionError) -> RedisConnectionConfiguration {
        configuration
    }

    public func accept(_ connection: RedisConnection, logger: Logger) async throws(RedisConnectionError) {}
}
