public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// The slot map of one Redis Cluster, shared by every connection of a `RedisClientFactory`.
///
/// Discovered from the seeds (`REDIS_CLUSTER`, the first that answers) with `CLUSTER SHARDS`,
/// falling back to `CLUSTER SLOTS` before Redis 7; later refreshes ask the known primaries first,
/// then the seeds. A refresh happens when a client asks for one (`-MOVED`, `-CLUSTERDOWN`, an
/// unasked `sunsubscribe`, a lost connection: each connection attempt wants a map at most
/// `attemptMaxAge` old) and every `periodicRefreshInterval`; concurrent requests share one
/// round trip, and two refreshes are at least `minimumRefreshInterval` apart.
///
/// Shared state: the map, its age and the refresh in flight sit in one `NIOLockedValueBox`; the lock
/// covers only those fields (never a connection, an `await` or a callback).
public final class RedisClusterTopology: Sendable {
    /// The nodes asked first.
    public let seeds: [RedisConnectionConfiguration.Endpoint]
    /// Credentials, TLS and timeouts for every data node; its endpoint is ignored.
    public let configuration: RedisConnectionConfiguration
    /// Two refreshes are at least this far apart. Default 200 ms.
    public let minimumRefreshInterval: Duration
    /// A map older than this is refreshed by the bus clients. Default 15 s.
    public let periodicRefreshInterval: Duration
    /// A connection attempt refreshes a map older than this. Default 250 ms.
    public let attemptMaxAge: Duration

    private struct State {
        var map: RedisClusterSlotMap?
        var refreshedAt: ContinuousClock.Instant?
        var inFlight: Task<RedisClusterSlotMap?, Never>?
        var observers: [Int: @Sendable (RedisClusterSlotMap) -> Void] = [:]
        var nextObserver = 0
        var refreshes = 0
        var reportedFailure = false
    }

    private let state = NIOLockedValueBox(State())
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    public init(
        seeds: [RedisConnectionConfiguration.Endpoint],
        configuration: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        minimumRefreshInterval: Duration = .milliseconds(200),
        periodicRefreshInterval: Duration = .seconds(15),
        attemptMaxAge: Duration = .milliseconds(250),
        logger: Logger = Logger(label: "ReverbRedis")
    ) {
        self.seeds = seeds
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.minimumRefreshInterval = minimumRefreshInterval
        self.periodicRefreshInterval = periodicRefreshInterval
        self.attemptMaxAge = attemptMaxAge
        self.logger = logger
    }

    /// The last map fetched, if any.
    public var currentMap: RedisClusterSlotMap? { state.withLockedValue { $0.map } }

    /// Slot map fetches so far (for tests and logs).
    public var refreshCount: Int { state.withLockedValue { $0.refreshes } }

    /// The configuration for a connection to `endpoint`: the factory's credentials and TLS.
    public func configuration(for endpoint: RedisConnectionConfiguration.Endpoint) -> RedisConnectionConfiguration {
        var configuration = self.configuration
        configuration.endpoint = endpoint
        return configuration
    }

    /// The map when it is at most `maxAge` old, else a refreshed one; nil while no node answers.
    public func map(maxAge: Duration) async -> RedisClusterSlotMap? {
        let now = ContinuousClock.now
        let fresh = state.withLockedValue { state -> RedisClusterSlotMap? in
            guard let map = state.map, let at = state.refreshedAt, now - at <= maxAge else { return nil }
            return map
        }
        if let fresh { return fresh }
        return await refresh()
    }

    /// Fetches the map again (sharing a fetch already under way) and returns it; nil, keeping
    /// the previous map, when no node answers.
    @discardableResult
    public func refresh() async -> RedisClusterSlotMap? {
        let task = state.withLockedValue { state in
            if let inFlight = state.inFlight { return inFlight }
            let wait =
                state.refreshedAt.map { max(.zero, self.minimumRefreshInterval - (ContinuousClock.now - $0)) } ?? .zero
            let task = Task { await self.fetchAndStore(after: wait) }
            state.inFlight = task
            return task
        }
        return await task.value
    }

    /// Asks for a refresh without waiting for it (from an event loop: a `-MOVED` reply).
    public func requestRefresh() {
        Task { await self.refresh() }
    }

    /// Calls `observer` after every refresh that changed the map. Returns a token for `removeObserver`.
    @discardableResult
    func addObserver(_ observer: @escaping @Sendable (RedisClusterSlotMap) -> Void) -> Int {
        state.withLockedValue { state in
            state.nextObserver += 1
            state.observers[state.nextObserver] = observer
            return state.nextObserver
        }
    }

    func removeObserver(_ token: Int) {
        _ = state.withLockedValue { $0.observers.removeValue(forKey: token) }
    }

    /// Refreshes the map whenever it is `periodicRefreshInterval` old, until the task is cancelled.
    func refreshPeriodically() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: periodicRefreshInterval)
            } catch {
                return
            }
            _ = await map(maxAge: periodicRefreshInterval)
        }
    }

    private func fetchAndStore(after wait: Duration) async -> RedisClusterSlotMap? {
        if wait > .zero { try? await Task.sleep(for: wait) }
        let fetched = await fetch()
        let (changed, observers) = state.withLockedValue { state in
            state.inFlight = nil
            state.refreshes += 1
            guard let fetched else { return (false, [@Sendable (RedisClusterSlotMap) -> Void]()) }
            state.refreshedAt = .now
            let changed = state.map != fetched
            state.map = fetched
            return (changed, Array(state.observers.values))
        }
        if let fetched, changed {
            logger.debug(
                "Redis Cluster slot map",
                metadata: [
                    "primaries": "\(fetched.shards.map(\.primary.description))",
                    "covered_slots": "\(fetched.coveredSlotCount)",
                ])
            for observer in observers { observer(fetched) }
        }
        return fetched ?? currentMap
    }

    /// Asks the known primaries, then the seeds, until one gives a map covering every slot; else
    /// keeps the most complete one (a cluster failing over covers fewer slots for a moment).
    private func fetch() async -> RedisClusterSlotMap? {
        var candidates: [RedisConnectionConfiguration.Endpoint] = []
        for endpoint in (currentMap?.shards.map(\.primary) ?? []) + seeds where !candidates.contains(endpoint) {
            candidates.append(endpoint)
        }
        var best: RedisClusterSlotMap?
        var failures: [String] = []
        for endpoint in candidates {
            do throws(RedisConnectionError) {
                let map = try await fetch(from: endpoint)
                if map.coveredSlotCount == RedisClusterSlot.count {
                    state.withLockedValue { $0.reportedFailure = false }
                    return map
                }
                if map.coveredSlotCount > best?.coveredSlotCount ?? -1 { best = map }
            } catch {
                failures.append(error.message)
            }
        }
        if best == nil {
            let first = state.withLockedValue { state in
                defer { state.reportedFailure = true }
                return !state.reportedFailure
            }
            let text = "No Redis Cluster node answered CLUSTER SHARDS: \(failures.joined(separator: "; "))"
            if first { logger.warning("\(text)") } else { logger.debug("\(text)") }
        }
        return best
    }

    private func fetch(from endpoint: RedisConnectionConfiguration.Endpoint) async throws(RedisConnectionError)
        -> RedisClusterSlotMap
    {
        var configuration = configuration(for: endpoint)
        // A dead seed must not hold the refresh for the whole connect timeout.
        configuration.connectTimeout = min(configuration.connectTimeout, .seconds(2))
        let connection = try await RedisConnection.connect(
            configuration: configuration, eventLoopGroup: eventLoopGroup, pingInterval: nil, logger: logger)
        defer { connection.channel.close(promise: nil) }
        do throws(RedisConnectionError) {
            let reply = try await connection.send(["CLUSTER", "SHARDS"])
            return try RedisClusterSlotMap.parse(shardsReply: reply, host: endpoint.host, tls: configuration.tls != nil)
        } catch  where error.kind == .errorReply {
            // Redis < 7 has no CLUSTER SHARDS.
            let reply = try await connection.send(["CLUSTER", "SLOTS"])
            return try RedisClusterSlotMap.parse(slotsReply: reply, host: endpoint.host)
        }
    }
}
