/// How the Redis behind a cluster of swift-reverb nodes is deployed (docs.md "Scaling"): the data
/// nodes' credentials, database and TLS come from the factory's `RedisConnectionConfiguration`
/// in every case; the topology says where the servers are.
public enum RedisTopology: Sendable, Equatable {
    /// One server at the configuration's endpoint (`REDIS_URL` or `REDIS_HOST`…).
    case server
    /// A Redis Cluster found from these seed nodes (`REDIS_CLUSTER`): the slot map comes from
    /// whichever answers first, and the bus uses sharded pub/sub.
    case cluster(seeds: [RedisConnectionConfiguration.Endpoint])
    /// A primary watched by Sentinel (`REDIS_SENTINELS`): the sentinels name the primary.
    case sentinel(RedisSentinelConfiguration)

    /// `server`, `cluster` or `sentinel`, for logs, `/up` and metrics.
    public var name: String {
        switch self {
        case .server: "server"
        case .cluster: "cluster"
        case .sentinel: "sentinel"
        }
    }
}

/// Where the sentinels are and which primary to ask them for.
public struct RedisSentinelConfiguration: Sendable, Equatable {
    /// The sentinels, asked in this order (`REDIS_SENTINELS`).
    public var sentinels: [RedisConnectionConfiguration.Endpoint]
    /// The monitored primary's name (`REDIS_SENTINEL_MASTER`). Default `mymaster`.
    public var masterName: String
    /// `AUTH` to the sentinels (`REDIS_SENTINEL_PASSWORD`). Default `nil`: none. The data nodes use
    /// `REDIS_USERNAME`/`REDIS_PASSWORD`.
    public var password: String?

    public init(
        sentinels: [RedisConnectionConfiguration.Endpoint], masterName: String = "mymaster", password: String? = nil
    ) {
        self.sentinels = sentinels
        self.masterName = masterName
        self.password = password
    }
}
