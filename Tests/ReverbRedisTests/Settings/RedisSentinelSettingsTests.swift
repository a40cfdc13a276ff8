import ReverbRedis
import Testing

/// One row of docs.md "Scaling" → "Sentinel", settings table.
struct SentinelSettingsExample: Sendable, CustomTestStringConvertible {
    enum Outcome: Sendable {
        case sentinel(RedisSentinelConfiguration, warnings: [String] = [])
        case error([String])
    }

    var row: String
    var settings: RedisSettings
    var outcome: Outcome

    var testDescription: String { "row \(row)" }
}

@Suite("Sentinel settings")
struct RedisSentinelSettingsTests {
    static let examples: [SentinelSettingsExample] = [
        .init(
            row: "S1", settings: RedisSettings(sentinels: "10.0.0.1:26379,10.0.0.2:26380"),
            outcome: .sentinel(
                RedisSentinelConfiguration(
                    sentinels: [.tcp(host: "10.0.0.1", port: 26379), .tcp(host: "10.0.0.2", port: 26380)]))
        ),
        .init(
            row: "S2",
            settings: RedisSettings(sentinels: " s1.internal , [::1]:26390", sentinelMaster: "cache"),
            outcome: .sentinel(
                RedisSentinelConfiguration(
                    sentinels: [.tcp(host: "s1.internal", port: 26379), .tcp(host: "::1", port: 26390)],
                    masterName: "cache"))
        ),
        .init(
            row: "S3", settings: RedisSettings(sentinels: "s1:26379", sentinelPassword: "sentinel-pw"),
            outcome: .sentinel(
                RedisSentinelConfiguration(sentinels: [.tcp(host: "s1", port: 26379)], password: "sentinel-pw"))
        ),
        .init(
            row: "S4", settings: RedisSettings(sentinels: "s1:abc"),
            outcome: .error(["REDIS_SENTINELS: port \"abc\" of \"s1:abc\" is not a number (1-65535)"])
        ),
        .init(
            row: "S5", settings: RedisSettings(sentinels: "s1:70000"),
            outcome: .error(["REDIS_SENTINELS: port 70000 of \"s1:70000\" is out of range (1-65535)"])
        ),
        .init(
            row: "S6", settings: RedisSettings(sentinels: "s1:26379,,s2:26379"),
            outcome: .error(["REDIS_SENTINELS: an empty address in \"s1:26379,,s2:26379\""])
        ),
        .init(
            row: "S7", settings: RedisSettings(url: "redis://cache.local", sentinels: "s1:26379"),
            outcome: .error([
                "REDIS_SENTINELS and REDIS_URL are exclusive: set a Redis Cluster's seeds, a Sentinel "
                    + "deployment's sentinels or one server, not more than one"
            ])
        ),
        .init(
            row: "S8", settings: RedisSettings(scheme: "unix", sentinels: "s1:26379"),
            outcome: .error([
                "REDIS_SCHEME: scheme \"unix\" needs a socket path in REDIS_HOST",
                "REDIS_SENTINELS: sentinels are reached over TCP, not a unix socket",
            ])
        ),
    ]

    @Test(arguments: examples)
    func example(_ example: SentinelSettingsExample) throws {
        switch example.outcome {
        case .sentinel(let expected, let warnings):
            let factory = try RedisClientFactory(settings: example.settings)
            #expect(factory.topology == .sentinel(expected))
            #expect(factory.warnings == warnings)
            #expect(factory.endpoint(forKey: "any") as? RedisSentinelEndpoint === factory.sentinelEndpoint)
        case .error(let problems):
            let error = #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: example.settings) }
            #expect(error?.problems == problems)
        }
    }

    @Test func dataNodeCredentialsStayWithTheDataNodes() throws {
        let factory = try RedisClientFactory(
            settings: RedisSettings(
                username: "reverb", password: "data-pw", database: "2", sentinels: "s1:26379",
                sentinelPassword: "sentinel-pw"))
        let endpoint = try #require(factory.sentinelEndpoint)
        #expect(endpoint.dataNode.username == "reverb")
        #expect(endpoint.dataNode.password == "data-pw")
        #expect(endpoint.dataNode.database == 2)
        #expect(endpoint.sentinel.password == "sentinel-pw")
    }
}
