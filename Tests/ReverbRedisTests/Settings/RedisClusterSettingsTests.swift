import ReverbRedis
import Testing

/// `REDIS_CLUSTER` through `RedisClientFactory`: the rows of docs.md "Redis Cluster".
@Suite("RedisClientFactory, Redis Cluster settings")
struct RedisClusterSettingsTests {
    private func problems(_ settings: RedisSettings) -> [String]? {
        #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: settings) }?.problems
    }

    @Test func seedsCredentialsAndTLSForEveryNode() throws {
        let factory = try RedisClientFactory(
            settings: RedisSettings(
                username: "reverb", password: "s3cret", scheme: "tls",
                cluster: "10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002,redis-3.internal"))
        #expect(
            factory.topology
                == .cluster(seeds: [
                    .tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 7001),
                    .tcp(host: "::1", port: 7002),
                    .tcp(host: "redis-3.internal", port: 6379),
                ]))
        let cluster = try #require(factory.cluster)
        let node = cluster.configuration(for: .tcp(host: "10.0.0.9", port: 7005))
        #expect(node.endpoint == .tcp(host: "10.0.0.9", port: 7005))
        #expect(node.username == "reverb" && node.password == "s3cret" && node.tls != nil && node.database == 0)
        // Keyed connections resolve through the shared slot map.
        #expect(factory.endpoint(forKey: "reverb") is RedisClusterSlotEndpoint)
        #expect((factory.endpoint(forKey: "foo") as? RedisClusterSlotEndpoint)?.slot == 12182)
        #expect(factory.makeBusPublisher() is RedisClusterPublisher)
        #expect(factory.makeBusSubscriber(channels: ["reverb"], onMessage: { _ in }) is RedisClusterSubscriber)
    }

    @Test func aSingleServerHasNoSlotMap() throws {
        let factory = try RedisClientFactory(settings: RedisSettings(url: "redis://cache.local"))
        #expect(factory.cluster == nil)
        #expect(factory.makeBusPublisher() is RedisPublisher)
    }

    @Test(arguments: [
        (
            RedisSettings(url: "redis://cache.local", cluster: "127.0.0.1:7000"),
            "REDIS_CLUSTER and REDIS_URL are exclusive: set a Redis Cluster's seeds, a Sentinel deployment's sentinels or one server, not more than one"
        ),
        (
            RedisSettings(database: "2", cluster: "127.0.0.1:7000"),
            "REDIS_DB: a Redis Cluster has database 0 only, not 2"
        ),
        (
            RedisSettings(cluster: "127.0.0.1:seven"),
            "REDIS_CLUSTER: port \"seven\" of \"127.0.0.1:seven\" is not a number (1-65535)"
        ),
        (
            RedisSettings(cluster: "127.0.0.1:70000"),
            "REDIS_CLUSTER: port 70000 of \"127.0.0.1:70000\" is out of range (1-65535)"
        ),
        (RedisSettings(cluster: "127.0.0.1:7000,,"), "REDIS_CLUSTER: an empty address in \"127.0.0.1:7000,,\""),
    ])
    func badSettingsNameTheSetting(settings: RedisSettings, problem: String) {
        #expect(problems(settings)?.contains(problem) == true, "\(problems(settings) ?? [])")
    }
}
