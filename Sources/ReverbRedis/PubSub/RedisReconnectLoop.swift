import Logging
import NIOCore

/// The connect, wait-for-close, back-off cycle shared by `RedisPublisher` and `RedisSubscriber`.
struct RedisReconnectLoop: Sendable {
    /// Where each attempt goes (`RedisEndpointResolver`).
    let endpoint: any RedisEndpointResolver
    let eventLoopGroup: any EventLoopGroup
    let options: RedisClientOptions
    let logger: Logger
    let tracker: RedisLinkTracker

    /// A loop reporting its link state to `onLinkStateChange` through a new `tracker`.
    init(
        endpoint: any RedisEndpointResolver,
        eventLoopGroup: any EventLoopGroup,
        options: RedisClientOptions,
        logger: Logger,
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)?
    ) {
        self.endpoint = endpoint
        self.eventLoopGroup = eventLoopGroup
        self.options = options
        self.logger = logger
        self.tracker = RedisLinkTracker(options: options, logger: logger, onChange: onLinkStateChange)
    }

    /// Whether the connection is ready, and since when.
    var linkState: RedisLinkState { tracker.link }

    /// Runs until the task is cancelled.
    ///
    /// - Parameters:
    ///   - onShardUnsubscribed: Told of each unasked `sunsubscribe` push (sharded pub/sub).
    ///   - prepare: Makes a new connection ready (`PING`, `SUBSCRIBE`); a thrown error counts as a failed attempt.
    ///   - up: Called once the connection is ready, before the link state changes.
    ///   - down: Called once the ready connection closed, before the link state changes.
    func run(
        onMessage: (@Sendable (RedisPubSubMessage) -> Void)?,
        onShardUnsubscribed: (@Sendable (String) -> Void)? = nil,
        prepare: @Sendable (RedisConnection) async throws(RedisConnectionError) -> Void,
        up: @Sendable (RedisConnection) -> Void,
        down: @Sendable () -> Void
    ) async {
        var failures = 0
        while !Task.isCancelled {
            tracker.attempting(afterFailures: failures)
            do throws(RedisConnectionError) {
                let configuration = try await endpoint.resolve(logger: logger)
                let connection = try await RedisConnection.connect(
                    configuration: configuration,
                    eventLoopGroup: eventLoopGroup,
                    clientName: options.clientName,
                    pingInterval: options.pingInterval,
                    logger: logger,
                    onMessage: onMessage,
                    onShardUnsubscribed: onShardUnsubscribed
                )
                do throws(RedisConnectionError) {
                    try await endpoint.accept(connection, logger: logger)
                    try await prepare(connection)
                } catch {
                    await connection.close()
                    throw error
                }
                failures = 0
                up(connection)
                tracker.connected()
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.channel.close(promise: nil)
                }
                down()
                tracker.disconnected(deliberately: Task.isCancelled)
                continue  // the first attempt after losing a connection goes at once
            } catch {
                if Task.isCancelled { break }
                tracker.attemptFailed(error)
            }
            failures += 1
            do {
                try await endpoint.pause(for: options.reconnectPolicy.delay(afterFailedAttempts: failures))
            } catch {
                break
            }
        }
    }
}
