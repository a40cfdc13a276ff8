import Testing

@testable import ReverbRedis

/// `REDIS_CLUSTER`, `REDIS_SENTINELS` and their exclusivity with one server (docs.md "Scaling").
@Suite("Redis topology settings")
struct RedisTopologySettingsTests {
    private func topology(_ settings: RedisSettings) throws -> RedisTopology {
        try RedisSettingsParser.parse(settings).topology
    }

    private func problems(_ settings: RedisSettings) -> [String] {
        do {
            _ = try RedisSettingsParser.parse(settings)
            return []
        } catch {
            return error.problems
        }
    }

    @Test func noTopologySettingIsOneServer() throws {
        #expect(try topology(RedisSettings()) == .server)
        #expect(try topology(RedisSettings(url: "redis://cache.local")) == .server)
    }

    @Test func clusterSeedsWithDefaultPortAndIPv6() throws {
        let parsed = try topology(RedisSettings(cluster: "10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002,redis-0"))
        #expect(
            parsed
                == .cluster(seeds: [
                    .tcp(host: "10.0.0.1", port: 7000), .tcp(host: "10.0.0.2", port: 7001),
                    .tcp(host: "::1", port: 7002), .tcp(host: "redis-0", port: 6379),
                ]))
    }

    @Test func sentinelsWithDefaultsAndOwnPassword() throws {
        let plain = try topology(RedisSettings(sentinels: "s1:26380,s2"))
        #expect(
            plain
                == .sentinel(
                    RedisSentinelConfiguration(
                        sentinels: [.tcp(host: "s1", port: 26380), .tcp(host: "s2", port: 26379)],
                        masterName: "mymaster")))
        let named = try RedisSettingsParser.parse(
            RedisSettings(
                password: "data-secret", sentinels: "s1", sentinelMaster: "prod", sentinelPassword: "sentinel-secret"))
        #expect(
            named.topology
                == .sentinel(
                    RedisSentinelConfiguration(
                        sentinels: [.tcp(host: "s1", port: 26379)], masterName: "prod", password: "sentinel-secret")))
        // The data nodes keep REDIS_PASSWORD.
        #expect(named.configuration.password == "data-secret")
    }

    @Test func twoTopologiesAreAnErrorNamingBoth() {
        #expect(
            problems(RedisSettings(url: "redis://cache.local", cluster: "a:7000")) == [
                "REDIS_CLUSTER and REDIS_URL are exclusive: set a Redis Cluster's seeds, a Sentinel deployment's "
                    + "sentinels or one server, not more than one"
            ])
        #expect(
            problems(RedisSettings(cluster: "a:7000", sentinels: "s:26379")) == [
                "REDIS_CLUSTER and REDIS_SENTINELS are exclusive: set a Redis Cluster's seeds, a Sentinel deployment's "
                    + "sentinels or one server, not more than one"
            ])
        #expect(
            problems(RedisSettings(host: "10.0.0.5", sentinels: "s:26379")) == [
                "REDIS_SENTINELS and REDIS_HOST are exclusive: set a Redis Cluster's seeds, a Sentinel deployment's "
                    + "sentinels or one server, not more than one"
            ])
        // A password is for the data nodes, not a server address: it goes with any topology.
        #expect(problems(RedisSettings(password: "pw", cluster: "a:7000")) == [])
    }

    @Test func badAddressesNameTheSettingAndTheEntry() {
        #expect(
            problems(RedisSettings(cluster: "a:7000,b:abc")) == [
                #"REDIS_CLUSTER: port "abc" of "b:abc" is not a number (1-65535)"#
            ])
        #expect(
            problems(RedisSettings(sentinels: "s:99999")) == [
                #"REDIS_SENTINELS: port 99999 of "s:99999" is out of range (1-65535)"#
            ])
        #expect(
            problems(RedisSettings(cluster: "a:7000,,b:7001")) == [
                #"REDIS_CLUSTER: an empty address in "a:7000,,b:7001""#
            ])
        #expect(
            problems(RedisSettings(cluster: "[::1:7000")) == [
                #"REDIS_CLUSTER: "[::1:7000" has no closing bracket (write [::1]:7000)"#
            ])
        #expect(problems(RedisSettings(cluster: ":7000")) == [#"REDIS_CLUSTER: ":7000" names no host in ":7000""#])
    }

    @Test func clusterHasDatabaseZeroOnly() {
        #expect(
            problems(RedisSettings(database: "2", cluster: "a:7000")) == [
                "REDIS_DB: a Redis Cluster has database 0 only, not 2"
            ])
    }

    @Test func sentinelSettingsWithoutSentinelsAreIgnoredWithAWarning() throws {
        let result = try RedisSettingsParser.parse(RedisSettings(sentinelMaster: "prod", sentinelPassword: "x"))
        #expect(result.topology == .server)
        #expect(
            result.warnings == [
                "REDIS_SENTINEL_MASTER is ignored without REDIS_SENTINELS",
                "REDIS_SENTINEL_PASSWORD is ignored without REDIS_SENTINELS",
            ])
    }

    @Test func configFileNamesTheKeys() {
        var settings = RedisSettings(url: "redis://x", cluster: "a:7000")
        settings.names = .configFile()
        #expect(
            problems(settings) == [
                "config/reverb.json: servers.reverb.scaling.server.cluster and "
                    + "config/reverb.json: servers.reverb.scaling.server.url are exclusive: set a Redis Cluster's "
                    + "seeds, a Sentinel deployment's sentinels or one server, not more than one"
            ])
    }
}
