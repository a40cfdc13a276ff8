import ReverbRedis
import Testing

@testable import Reverb

/// Which Redis topology the configuration sources give, when they name more than one
/// (docs.md "Scaling settings"): the environment beats the file, as for every setting.
@Suite struct ConfigurationTopologyTests {
    private static let laravelStyleFile = nestedJSON(
        ["servers", "reverb", "scaling", "server"], #"{"url": null, "host": "127.0.0.1", "port": 6379}"#)

    private func topology(environment: [String: String], file: String? = nil) throws -> RedisTopology {
        let configuration = try loadConfiguration(
            environment: environmentAppCredentials.merging(environment) { $1 }, file: file)
        return try RedisClientFactory(settings: configuration.scaling.redis).topology
    }

    @Test func environmentSentinelsBeatAFileServer() throws {
        let found = try topology(environment: ["REDIS_SENTINELS": "127.0.0.1:26379"], file: Self.laravelStyleFile)
        guard case .sentinel(let sentinel) = found else {
            Issue.record("expected sentinels, got \(found)")
            return
        }
        #expect(sentinel.sentinels == [.tcp(host: "127.0.0.1", port: 26379)])
    }

    @Test func environmentClusterBeatsAFileServer() throws {
        let found = try topology(environment: ["REDIS_CLUSTER": "10.0.0.1:7000"], file: Self.laravelStyleFile)
        #expect(found == .cluster(seeds: [.tcp(host: "10.0.0.1", port: 7000)]))
    }

    @Test func environmentServerBeatsAFileCluster() throws {
        let file = nestedJSON(["servers", "reverb", "scaling", "server"], #"{"cluster": "10.0.0.1:7000"}"#)
        #expect(try topology(environment: ["REDIS_HOST": "10.0.0.9"], file: file) == .server)
    }

    @Test func twoInTheEnvironmentStayAnError() throws {
        let configuration = try loadConfiguration(
            environment: environmentAppCredentials.merging(["REDIS_HOST": "h", "REDIS_CLUSTER": "c:7000"]) { $1 })
        #expect(throws: RedisSettingsError.self) { try RedisClientFactory(settings: configuration.scaling.redis) }
    }
}
