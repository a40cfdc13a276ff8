public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// Reads a Redis Stream with `XREAD BLOCK` over one connection that it keeps open, reconnecting
/// forever and resuming after the last entry it delivered, so nothing appended while it was away
/// is missed while the stream still holds it.
///
/// On the first connection it starts after the stream's newest entry. After a reconnect it checks
/// that the stream still holds its last entry (so everything after it); when it does not (trimmed
/// past it, or Redis restarted without the stream) it calls `onGap` once for that reconnect and
/// carries on with what is there.
///
/// Entries go to `onEntry` on the connection's event loop, in stream order; keep it short.
/// Call `run()` in a long-lived task; cancel that task to stop.
public final class RedisStreamReader: Sendable {
    /// The longest an `XREAD` waits for new entries before it is sent again.
    public static let blockTime = Duration.seconds(2)
    /// Entries per `XREAD`.
    public static let batchSize = 1000

    private let loop: RedisReconnectLoop
    private let onEntry: @Sendable (RedisStreamEntry) -> Void
    private let onGap: @Sendable (String) -> Void
    private let logger: Logger
    /// The last entry delivered; nil before the first connection.
    private let position = NIOLockedValueBox<RedisStreamID?>(nil)

    /// The stream read.
    public let stream: String

    /// - Parameters:
    ///   - onLinkStateChange: Called after each change of `linkState`; `.connected` means reading.
    ///   - onGap: Told, with the reason, when entries after the last one delivered may be gone.
    ///   - onEntry: Receives each entry.
    public convenience init(
        configuration: RedisConnectionConfiguration,
        stream: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onGap: @escaping @Sendable (String) -> Void = { _ in },
        onEntry: @escaping @Sendable (RedisStreamEntry) -> Void
    ) {
        self.init(
            endpoint: FixedRedisEndpoint(configuration), stream: stream, eventLoopGroup: eventLoopGroup,
            options: options, logger: logger, onLinkStateChange: onLinkStateChange, onGap: onGap, onEntry: onEntry)
    }

    /// A reader whose every connection attempt goes where `endpoint` says (Sentinel, a cluster slot).
    public init(
        endpoint: any RedisEndpointResolver,
        stream: String,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        options: RedisClientOptions = RedisClientOptions(role: "subscriber"),
        logger: Logger = Logger(label: "ReverbRedis"),
        onLinkStateChange: (@Sendable (RedisLinkState) -> Void)? = nil,
        onGap: @escaping @Sendable (String) -> Void = { _ in },
        onEntry: @escaping @Sendable (RedisStreamEntry) -> Void
    ) {
        self.stream = stream
        self.onEntry = onEntry
        self.onGap = onGap
        self.logger = logger
        self.loop = RedisReconnectLoop(
            endpoint: endpoint, eventLoopGroup: eventLoopGroup, options: options, logger: logger,
            onLinkStateChange: onLinkStateChange)
    }

    /// Whether the reader is connected and reading, and since when.
    public var linkState: RedisLinkState { loop.linkState }

    /// Connections made after the first.
    public var reconnectCount: Int { loop.tracker.reconnectCount }

    /// The id of the last entry delivered.
    public var lastDelivered: RedisStreamID? { position.withLockedValue { $0 } }

    /// Connects, positions itself and reads until the calling task is cancelled. Call it once.
    public func run() async {
        await loop.run(
            onMessage: nil,
            prepare: { connection throws(RedisConnectionError) in
                try await self.position(on: connection)
            },
            up: { connection in self.read(connection) },
            down: {}
        )
    }

    /// Where to read from on a new connection; reports a gap after a reconnect.
    ///
    /// Trimming removes entries from the head only, so while the stream still holds the last entry
    /// delivered it holds everything after it. Otherwise entries after it may be gone: trimmed before
    /// they were read, or lost with the stream (Redis restarted without persistence, even when
    /// another node's appends have created it again since).
    private func position(on connection: RedisConnection) async throws(RedisConnectionError) {
        guard let last = lastDelivered else {
            // First connection: from now on.
            position.withLockedValue { $0 = .zero }
            if let newest = try await entryID(connection, ["XREVRANGE", stream, "+", "-", "COUNT", "1"]) {
                position.withLockedValue { $0 = newest }
            }
            return
        }
        guard last != .zero else { return }  // nothing read yet: nothing to miss
        if try await entryID(connection, ["XRANGE", stream, last.description, last.description]) != nil { return }
        guard let first = try await entryID(connection, ["XRANGE", stream, "-", "+", "COUNT", "1"]),
            let newest = try await entryID(connection, ["XREVRANGE", stream, "+", "-", "COUNT", "1"])
        else {
            report("the stream \(stream) no longer exists (Redis restarted without persistence, or was emptied)")
            position.withLockedValue { $0 = .zero }
            return
        }
        if newest < last {
            report("the stream \(stream) was recreated (its newest entry \(newest) is older than \(last))")
            position.withLockedValue { $0 = .zero }
        } else if first > last {
            report("the stream \(stream) no longer holds \(last) (trimmed, or recreated) before what followed was read")
        }
        // Else the entry was deleted on its own (XDEL); what follows it is still there.
    }

    /// The id of the first entry `command` (an `XRANGE`/`XREVRANGE`) returns, nil when none.
    private func entryID(_ connection: RedisConnection, _ command: [String]) async throws(RedisConnectionError)
        -> RedisStreamID?
    {
        guard case .array(let entries?) = try await connection.send(command), let first = entries.first,
            case .array(let pair?) = first, let text = pair.first?.string
        else { return nil }
        return RedisStreamID(text)
    }

    private func report(_ reason: String) {
        logger.warning("Redis stream gap: \(reason); cluster state is re-synchronised")
        onGap(reason)
    }

    /// Sends the next `XREAD BLOCK`; its reply, on the connection's event loop, delivers the entries
    /// and sends the next one, until the connection fails and the reconnect loop takes over. Kept
    /// on the event loop (no task hop per read), as pub/sub messages are.
    private func read(_ connection: RedisConnection) {
        let from = lastDelivered ?? .zero
        let promise = connection.channel.eventLoop.makePromise(of: RESPValue.self)
        promise.futureResult.whenComplete { result in
            switch result {
            case .success(.error(let text)):
                self.logger.warning("Redis refused XREAD: \(text)")
                connection.channel.close(promise: nil)
            case .success(let reply):
                self.deliver(reply)
                self.read(connection)
            case .failure:
                connection.channel.close(promise: nil)
            }
        }
        connection.enqueue(
            [
                "XREAD", "COUNT", String(Self.batchSize), "BLOCK", String(Self.blockTime.components.seconds * 1000),
                "STREAMS", stream, from.description,
            ].map { ByteBuffer(string: $0) }, promise: promise)
        connection.flush()
    }

    /// Hands each entry of an `XREAD` reply to `onEntry`, in order; nil (timed out) holds none.
    private func deliver(_ reply: RESPValue) {
        guard case .array(let streams?) = reply else { return }
        for entry in streams {
            guard case .array(let pair?) = entry, pair.count == 2, case .array(let items?) = pair[1] else { continue }
            for item in items {
                guard let parsed = RedisStreamEntry(item) else {
                    logger.warning("Malformed stream entry skipped: \(item)")
                    if case .array(let element?) = item, let text = element.first?.string, let id = RedisStreamID(text)
                    {
                        position.withLockedValue { $0 = id }
                    }
                    continue
                }
                position.withLockedValue { $0 = parsed.id }
                onEntry(parsed)
            }
        }
    }
}
