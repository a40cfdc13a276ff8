import Foundation
import Logging
import NIOCore
import NIOPosix
import ReverbRedis
import Testing

/// The bus clients against a real three-primary Redis Cluster (one replica each) that each test starts.
/// Serialized: one cluster (up to six `redis-server`s) at a time; four starting at once beside the rest
/// of the suite on two cores coincided with other Redis tests missing their 15 s deadlines.
@Suite("Redis Cluster", .serialized)
struct RedisClusterTests {
    /// Bucket-style channel names (`<prefix>:<n>`, no hash tag), one owned by each primary of `map`.
    private func channelPerShard(_ map: RedisClusterSlotMap, prefix: String) -> [String] {
        var chosen: [Int: String] = [:]
        var bucket = 0
        while chosen.count < map.shards.count {
            let name = "\(prefix):\(bucket)"
            if let anchor = map.shard(forKey: name)?.anchor, chosen[anchor] == nil { chosen[anchor] = name }
            bucket += 1
        }
        return chosen.sorted { $0.key < $1.key }.map(\.value)
    }

    private func topology(_ cluster: RedisClusterProcess) -> RedisClusterTopology {
        var configuration = RedisConnectionConfiguration()
        configuration.connectTimeout = .seconds(20)
        return RedisClusterTopology(seeds: cluster.seeds, configuration: configuration)
    }

    private struct Received: Sendable, Hashable {
        var channel: String
        var payload: String
    }

    @Test(
        "the slot map is found from the seeds; channels on every primary are delivered; keyed endpoints resolve to the owner"
    )
    func deliversAcrossShards() async throws {
        let cluster = try await RedisClusterProcess.start()
        defer { cluster.stop() }
        // A dead seed first: the next one answers.
        let topology = RedisClusterTopology(
            seeds: [.tcp(host: "127.0.0.1", port: try await RedisServerProcess.freePort())] + cluster.seeds,
            configuration: RedisConnectionConfiguration(connectTimeout: .seconds(20)))
        let map = try #require(await topology.refresh())
        #expect(map.shards.count == 3)
        #expect(map.coveredSlotCount == RedisClusterSlot.count)
        #expect(Set(map.shards.map(\.primary.description)) == Set(cluster.seeds.map(\.description)))

        let factory = RedisClientFactory(
            configuration: topology.configuration, topology: .cluster(seeds: cluster.seeds))
        let owner = try await cluster.primary(forSlot: RedisClusterSlot.slot(forKey: "foo"))
        let resolved = try await factory.endpoint(forKey: "foo").resolve(logger: Logger(label: "test"))
        #expect(resolved.endpoint == .tcp(host: "127.0.0.1", port: owner.port))

        let prefix = TestRedis.uniqueChannel()
        let channels = channelPerShard(map, prefix: prefix)
        let received = Collector<Received>()
        let subscriber = RedisClusterSubscriber(
            topology: topology, channels: [channels[0]], eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        ) { message in
            received.append(Received(channel: message.channel, payload: String(buffer: message.payload)))
        }
        let publisher = RedisClusterPublisher(topology: topology, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await withRunning([subscriber.run, publisher.run]) {
            subscriber.subscribe(Array(channels.dropFirst()))
            try await eventually("subscribed on every shard") {
                subscriber.linkState.isConnected && subscriber.unsubscribedChannels.isEmpty
                    && subscriber.shardLinks.count == 3
            }
            for channel in channels { publisher.publish(ByteBuffer(string: "to \(channel)"), to: channel) }
            try await eventually("one message per shard") { received.all.count == 3 }
            #expect(Set(received.all) == Set(channels.map { Received(channel: $0, payload: "to \($0)") }))
            #expect(publisher.shardLinks.count == 3)
            #expect(Set(publisher.shardLinks.map(\.shard)) == Set(cluster.seeds.map(\.description)))
            // Each shard's node holds its channel's subscription only.
            for (channel, shard) in zip(channels, map.shards.sorted { $0.anchor < $1.anchor }) {
                let server = try #require(
                    cluster.primaries.first { .tcp(host: "127.0.0.1", port: $0.port) == shard.primary })
                let count = try await cluster.command(server, ["PUBSUB", "SHARDNUMSUB", channel])
                #expect(count == .array([.bulkString(ByteBuffer(string: channel)), .integer(1)]))
            }
            // Stream transport: XADD and XREAD on the stream key's owner.
            let stream = "\(prefix)-stream"
            let entries = Collector<String>()
            let reader = factory.makeStreamReader(stream: stream) { entry in
                entries.append(String(buffer: entry.payload))
            }
            let streamPublisher = factory.makeBusPublisher(mode: .stream(maxLength: 100, origin: "test"))
            try await withRunning([reader.run, streamPublisher.run]) {
                try await eventually("reading the stream") { reader.linkState.isConnected }
                streamPublisher.publish(ByteBuffer(string: "appended"), to: stream)
                try await eventually("the entry read back") { entries.all == ["appended"] }
            }
            let streamOwner = try await cluster.primary(forSlot: RedisClusterSlot.slot(forKey: stream))
            #expect(try await cluster.command(streamOwner, ["XLEN", stream]) == .integer(1))

            subscriber.unsubscribe([channels[1]])
            try await eventually("unsubscribed") {
                let server = try await cluster.primary(forSlot: RedisClusterSlot.slot(forKey: channels[1]))
                return try await cluster.command(server, ["PUBSUB", "SHARDNUMSUB", channels[1]])
                    == .array([.bulkString(ByteBuffer(string: channels[1])), .integer(0)])
            }
        }
    }

    @Test(
        "a migrated slot: the subscriber follows the sunsubscribe push, the publisher follows -MOVED, nothing after the move is lost"
    )
    func followsAMigratedSlot() async throws {
        let cluster = try await RedisClusterProcess.start(replicasPerPrimary: 0)
        defer { cluster.stop() }
        let topology = topology(cluster)
        let channel = TestRedis.uniqueChannel()
        let slot = RedisClusterSlot.slot(forKey: channel)
        let received = Collector<String>()
        let subscriber = RedisClusterSubscriber(
            topology: topology, channels: [channel], eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        ) { message in received.append(String(buffer: message.payload)) }
        let publisher = RedisClusterPublisher(topology: topology, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        // A publisher with a map of its own, which only a -MOVED reply will correct.
        let staleTopology = self.topology(cluster)
        let stalePublisher = RedisClusterPublisher(
            topology: staleTopology, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await withRunning([subscriber.run, publisher.run, stalePublisher.run]) {
            try await eventually("subscribed") { subscriber.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "before"), to: channel)
            stalePublisher.publish(ByteBuffer(string: "before-stale"), to: channel)
            try await eventually("delivered before the move") { received.all.count == 2 }

            let source = try await cluster.primary(forSlot: slot)
            let target = try #require(cluster.primaries.first { $0 !== source })
            try await cluster.migrate(slot: slot, from: source, to: target)
            // Only the sunsubscribe push can tell the subscriber (the periodic refresh is 15 s away).
            try await eventually("subscribed on the new owner", timeout: .seconds(5)) {
                try await cluster.command(target, ["PUBSUB", "SHARDNUMSUB", channel])
                    == .array([.bulkString(ByteBuffer(string: channel)), .integer(1)])
            }
            // The publisher's map is the shared one, refreshed by the subscriber: reset its route
            // by publishing on the old owner's connection through a topology of its own.
            publisher.publish(ByteBuffer(string: "after-1"), to: channel)
            try await eventually("delivered after the move") { received.all.contains("after-1") }
            stalePublisher.publish(ByteBuffer(string: "after-2"), to: channel)
            // Refused with -MOVED by the old owner, re-routed to the new one: not lost.
            try await eventually("re-routed after -MOVED") { received.all.contains("after-2") }
            #expect(stalePublisher.droppedMessageCount == 0 && publisher.droppedMessageCount == 0)
            let owner = RedisConnectionConfiguration.Endpoint.tcp(host: "127.0.0.1", port: target.port)
            #expect(staleTopology.currentMap?.shard(forSlot: slot)?.primary == owner)
            #expect(topology.currentMap?.shard(forSlot: slot)?.primary == owner)
        }
    }

    @Test("stream appends follow -ASK (ASKING, then XADD on the importing node) and then -MOVED, none lost")
    func streamAppendsFollowAskThenMoved() async throws {
        let cluster = try await RedisClusterProcess.start(replicasPerPrimary: 0)
        defer { cluster.stop() }
        let stream = TestRedis.uniqueChannel()
        let slot = RedisClusterSlot.slot(forKey: stream)
        let publisher = RedisClusterPublisher(
            topology: topology(cluster), eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            mode: .stream(maxLength: 100, origin: "test"))
        try await withRunning([publisher.run]) {
            let source = try await cluster.primary(forSlot: slot)
            let target = try #require(cluster.primaries.first { $0 !== source })
            publisher.publish(ByteBuffer(string: "1"), to: stream)
            try await eventually("appended on the owner") {
                try await cluster.command(source, ["XLEN", stream]) == .integer(1)
            }
            // Mid-migration, the key already moved: the source answers -ASK.
            _ = try await cluster.command(
                target, ["CLUSTER", "SETSLOT", String(slot), "IMPORTING", cluster.id(of: source)])
            _ = try await cluster.command(
                source, ["CLUSTER", "SETSLOT", String(slot), "MIGRATING", cluster.id(of: target)])
            _ = try await cluster.command(source, ["MIGRATE", "127.0.0.1", String(target.port), stream, "0", "5000"])
            publisher.publish(ByteBuffer(string: "2"), to: stream)
            try await eventually("appended on the importing node after ASKING") {
                try await cluster.commands(target, [["ASKING"], ["XLEN", stream]]) == .integer(2)
            }
            // Migration done: -MOVED, and the map follows.
            for server in cluster.primaries {
                _ = try await cluster.command(
                    server, ["CLUSTER", "SETSLOT", String(slot), "NODE", cluster.id(of: target)])
            }
            publisher.publish(ByteBuffer(string: "3"), to: stream)
            try await eventually("appended on the new owner") {
                try await cluster.command(target, ["XLEN", stream]) == .integer(3)
            }
            #expect(publisher.droppedMessageCount == 0)
        }
    }

    @Test("a primary killed: its replica is promoted by the cluster, publisher and subscriber resume on it")
    func survivesAPrimaryFailover() async throws {
        let cluster = try await RedisClusterProcess.start()
        defer { cluster.stop() }
        let topology = topology(cluster)
        let channel = TestRedis.uniqueChannel()
        let received = Collector<String>()
        let subscriber = RedisClusterSubscriber(
            topology: topology, channels: [channel], eventLoopGroup: MultiThreadedEventLoopGroup.singleton
        ) { message in received.append(String(buffer: message.payload)) }
        let publisher = RedisClusterPublisher(topology: topology, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        try await withRunning([subscriber.run, publisher.run]) {
            try await eventually("subscribed") { subscriber.linkState.isConnected }
            publisher.publish(ByteBuffer(string: "0"), to: channel)
            try await eventually("first message") { received.all == ["0"] }

            let primary = try await cluster.primary(forSlot: RedisClusterSlot.slot(forKey: channel))
            let replica = try await cluster.replica(of: primary)
            let killed = ContinuousClock.now
            try await primary.kill()
            try await eventually("the shard's link down") { !publisher.linkState.isConnected }
            // Published while the shard has no primary: held, then sent to the promoted replica.
            publisher.publish(ByteBuffer(string: "1"), to: channel)
            try await eventually("the replica promoted", timeout: .seconds(20)) {
                try await cluster.command(replica, ["ROLE"]).description.contains("master")
            }
            try await eventually("publisher and subscriber on the new primary", timeout: .seconds(20)) {
                publisher.linkState.isConnected && subscriber.linkState.isConnected
                    && subscriber.shardLinks.first?.shard == "127.0.0.1:\(replica.port)"
            }
            var next = 2
            try await eventually("delivery resumed", timeout: .seconds(20)) {
                publisher.publish(ByteBuffer(string: String(next)), to: channel)
                next += 1
                return received.all.count >= 2
            }
            #expect(ContinuousClock.now - killed < .seconds(30))
            #expect(publisher.droppedMessageCount == 0)
            #expect(publisher.reconnectCount >= 1)
            #expect(subscriber.reconnectCount >= 1)
        }
    }
}
