import NIOCore
import ReverbRedis
import Testing

@Suite struct RedisClusterSlotMapTests {
    private func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    private func node(
        port: Int, role: String, health: String = "online", endpoint: String = "127.0.0.1", tlsPort: Int? = nil
    ) -> RESPValue {
        var fields: [RESPValue] = [bulk("id"), bulk("n\(port)"), bulk("port"), .integer(Int64(port))]
        if let tlsPort { fields += [bulk("tls-port"), .integer(Int64(tlsPort))] }
        fields += [
            bulk("ip"), bulk("10.0.0.\(port % 100)"), bulk("endpoint"), bulk(endpoint), bulk("role"), bulk(role),
            bulk("replication-offset"), .integer(0), bulk("health"), bulk(health),
        ]
        return .array(fields)
    }

    private func shard(_ slots: [Int64], _ nodes: [RESPValue]) -> RESPValue {
        .array([bulk("slots"), .array(slots.map(RESPValue.integer)), bulk("nodes"), .array(nodes)])
    }

    @Test("CLUSTER SHARDS: primaries' announced endpoints, every range, failed primaries left out")
    func parseShards() throws {
        let reply = RESPValue.array([
            shard([0, 5460, 10923, 10924], [node(port: 7000, role: "master"), node(port: 7003, role: "replica")]),
            shard([5461, 10922], [node(port: 7001, role: "master", endpoint: "redis-1.internal")]),
            // Its primary failed and the replica is not promoted yet: no owner for those slots.
            shard(
                [10925, 16383], [node(port: 7002, role: "master", health: "failed"), node(port: 7005, role: "replica")]),
            // A node announcing no endpoint ("?"): its ip.
            shard([], [node(port: 7009, role: "master", endpoint: "?")]),
        ])
        let map = try RedisClusterSlotMap.parse(shardsReply: reply, host: "seed", tls: false)
        #expect(map.shards.count == 2)
        #expect(map.shard(forSlot: 0)?.primary == .tcp(host: "127.0.0.1", port: 7000))
        #expect(map.shard(forSlot: 10924)?.primary == .tcp(host: "127.0.0.1", port: 7000))
        #expect(map.shard(forSlot: 10924)?.anchor == 0)
        #expect(map.shard(forSlot: 6000)?.primary == .tcp(host: "redis-1.internal", port: 7001))
        #expect(map.shard(forSlot: 6000)?.anchor == 5461)
        #expect(map.shard(forSlot: 12000) == nil)
        #expect(map.shard(forKey: "foo") == nil)  // slot 12182
        #expect(map.coveredSlotCount == 5461 + 2 + 5462)
    }

    @Test("CLUSTER SHARDS with TLS: the tls-port")
    func parseShardsTLS() throws {
        let reply = RESPValue.array([shard([0, 16383], [node(port: 7000, role: "master", tlsPort: 17000)])])
        #expect(
            try RedisClusterSlotMap.parse(shardsReply: reply, host: "s", tls: true).shards.first?.primary
                == .tcp(host: "127.0.0.1", port: 17000))
        #expect(
            try RedisClusterSlotMap.parse(shardsReply: reply, host: "s", tls: false).shards.first?.primary
                == .tcp(host: "127.0.0.1", port: 7000))
    }

    @Test("CLUSTER SLOTS: ranges grouped by primary; an empty host is the node asked")
    func parseSlots() throws {
        func range(_ low: Int64, _ high: Int64, _ host: String, _ port: Int64) -> RESPValue {
            .array([
                .integer(low), .integer(high), .array([bulk(host), .integer(port), bulk("id")]),
                .array([bulk(host), .integer(port + 3), bulk("replica")]),
            ])
        }
        let reply = RESPValue.array([
            range(0, 5460, "127.0.0.1", 7000), range(5461, 10922, "", 7001), range(10923, 16383, "127.0.0.1", 7000),
        ])
        let map = try RedisClusterSlotMap.parse(slotsReply: reply, host: "10.1.1.1")
        #expect(map.shards.count == 2)
        #expect(map.shard(forSlot: 16383)?.primary == .tcp(host: "127.0.0.1", port: 7000))
        #expect(map.shard(forSlot: 16383)?.anchor == 0)
        #expect(map.shard(forSlot: 5461)?.primary == .tcp(host: "10.1.1.1", port: 7001))
        #expect(map.coveredSlotCount == RedisClusterSlot.count)
    }

    @Test(arguments: [
        RESPValue.integer(1), .array([.integer(1)]), .array([.array([.bulkString(ByteBuffer(string: "slots"))])]),
    ])
    func malformedShardsThrow(reply: RESPValue) {
        #expect(throws: RedisConnectionError.self) {
            try RedisClusterSlotMap.parse(shardsReply: reply, host: "h", tls: false)
        }
    }

    /// A slot outside 0–16383 is no slot: a shard anchored on one could never be found again.
    @Test("slot numbers outside 0-16383 are a malformed reply", arguments: [(-1, 5), (16_000, 16_384), (5, 4)])
    func slotsOutOfRangeThrow(low: Int64, high: Int64) {
        let shards = RESPValue.array([shard([low, high], [node(port: 7000, role: "master")])])
        let error = #expect(throws: RedisConnectionError.self) {
            try RedisClusterSlotMap.parse(shardsReply: shards, host: "h", tls: false)
        }
        #expect(error?.kind == .protocolError)
        let primary = RESPValue.array([bulk("127.0.0.1"), .integer(7000)])
        let slots = RESPValue.array([.array([.integer(low), .integer(high), primary])])
        #expect(throws: RedisConnectionError.self) { try RedisClusterSlotMap.parse(slotsReply: slots, host: "h") }
    }

    @Test func bucketsSpreadOverThePrimaries() {
        let map = RedisClusterSlotMap(shards: [
            .init(primary: .tcp(host: "a", port: 1), slots: [0...5460]),
            .init(primary: .tcp(host: "b", port: 2), slots: [5461...10922]),
            .init(primary: .tcp(host: "c", port: 3), slots: [10923...16383]),
        ])
        var perShard: [Int: Int] = [:]
        for bucket in 0..<4096 { perShard[map.shard(forKey: "reverb:\(bucket)")!.anchor, default: 0] += 1 }
        // As `redis-cli cluster keyslot` places them: even, with no hash tag to pin them to one slot.
        #expect(perShard == [0: 1368, 5461: 1368, 10923: 1360])
    }
}
