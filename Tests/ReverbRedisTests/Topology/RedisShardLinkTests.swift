import Testing

@testable import ReverbRedis

@Suite struct RedisShardLinkTests {
    @Test func theWorstShardDecides() {
        let start = ContinuousClock.now
        let (t1, t2, t3) = (start + .seconds(1), start + .seconds(2), start + .seconds(3))
        #expect(RedisShardLink.worst([], empty: start) == .disconnected(since: start))
        #expect(
            RedisShardLink.worst([.connected(since: t1), .connected(since: t3)], empty: start) == .connected(since: t3))
        #expect(
            RedisShardLink.worst(
                [.connected(since: t1), .disconnected(since: t3), .disconnected(since: t2)], empty: start)
                == .disconnected(since: t2))
    }

    @Test func linksAreNamedByTheShardsPrimaryNow() {
        let map = RedisClusterSlotMap(shards: [
            .init(primary: .tcp(host: "10.0.0.1", port: 7000), slots: [0...8191]),
            .init(primary: .tcp(host: "10.0.0.2", port: 7001), slots: [8192...16000]),
        ])
        let now = ContinuousClock.now
        let links = RedisShardLink.links(
            [8192: .connected(since: now), 0: .disconnected(since: now), 16383: .disconnected(since: now)], map: map)
        #expect(links.map(\.shard) == ["10.0.0.1:7000", "10.0.0.2:7001", "slot 16383"])
    }
}
